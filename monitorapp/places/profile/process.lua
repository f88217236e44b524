-- The monitoring centre's basemap profile for tilemaker 2.x (monitorapp basemap build).
-- Layers: roads (kind, name, ref), rail, buildings, water, parks, boundaries (London borough
-- edges), places (borough, district and station names). Data: © OpenStreetMap contributors, ODbL.
-- Borough label points are nodes tagged emapp:label=borough that the pipeline adds itself.

function Set(list)
	local set = {}
	for _, l in ipairs(list) do set[l] = true end
	return set
end

-- highway value -> road kind, the zoom it appears from, and the zoom its name is written from
ROAD = {
	motorway = {"motorway", 10}, motorway_link = {"motorway", 12},
	trunk = {"trunk", 10}, trunk_link = {"trunk", 12},
	primary = {"primary", 10}, primary_link = {"primary", 12},
	secondary = {"secondary", 11}, secondary_link = {"secondary", 13},
	tertiary = {"tertiary", 12}, tertiary_link = {"tertiary", 13},
	unclassified = {"minor", 13}, residential = {"minor", 13}, living_street = {"minor", 13},
	road = {"minor", 13}, busway = {"minor", 13},
	pedestrian = {"pedestrian", 14},
	service = {"service", 14},
	footway = {"path", 15}, path = {"path", 15}, cycleway = {"path", 15}, steps = {"path", 15},
	bridleway = {"path", 15}, track = {"path", 15},
}
NAME_ZOOM = { motorway = 12, trunk = 12, primary = 13, secondary = 13, tertiary = 14,
	minor = 14, pedestrian = 14, service = 15, path = 15 }
RAIL = Set { "rail", "light_rail", "subway", "tram", "narrow_gauge", "monorail" }
WATER_NATURAL = Set { "water", "wetland" }
WATER_LANDUSE = Set { "reservoir", "basin" }
WATERWAY_LINE = Set { "river", "canal", "stream" }
PARK_LEISURE = Set { "park", "garden", "nature_reserve", "common", "recreation_ground", "pitch", "golf_course", "playground" }
PARK_LANDUSE = Set { "grass", "recreation_ground", "cemetery", "allotments", "forest", "meadow", "village_green" }
PARK_NATURAL = Set { "wood", "scrub", "heath", "grassland" }
PLACE_NODE = { suburb = 11, neighbourhood = 14, quarter = 13, town = 10, village = 12, locality = 15 }

function init_function() end
function exit_function() end

node_keys = { "place", "railway", "emapp:label" }
function node_function(node)
	if node:Find("emapp:label") == "borough" then
		node:Layer("places", false)
		node:Attribute("kind", "borough")
		node:Attribute("name", node:Find("name"))
		return
	end
	local name = node:Find("name")
	if name == "" then return end
	local place = node:Find("place")
	if PLACE_NODE[place] then
		node:Layer("places", false)
		node:MinZoom(PLACE_NODE[place])
		node:Attribute("kind", "district")
		node:Attribute("name", name)
		return
	end
	local railway = node:Find("railway")
	if railway == "station" then
		node:Layer("places", false)
		node:MinZoom(14)
		node:Attribute("kind", "station")
		node:Attribute("name", name)
	end
end

-- London boroughs: admin_level 8 boundaries, and the City of London (admin_level 6, E09000001)
function relation_scan_function(relation)
	if relation:Find("type") == "boundary" and relation:Find("boundary") == "administrative" then
		local level = relation:Find("admin_level")
		local gss = relation:Find("ref:gss")
		if level == "8" or string.sub(gss, 1, 3) == "E09" then
			relation:Accept()
		end
	end
end

function way_function(way)
	-- borough edges: any way of an accepted boundary relation
	local edge = false
	while true do
		local rel = way:NextRelation()
		if not rel then break end
		edge = true
	end
	if edge then
		way:Layer("boundaries", false)
		way:AttributeNumeric("admin_level", 8)
	end

	local highway = way:Find("highway")
	local railway = way:Find("railway")
	local waterway = way:Find("waterway")
	local building = way:Find("building")
	local natural = way:Find("natural")
	local landuse = way:Find("landuse")
	local leisure = way:Find("leisure")
	local closed = way:IsClosed()

	local road = ROAD[highway]
	if road and way:Find("area") ~= "yes" then
		local kind = road[1]
		way:Layer("roads", false)
		way:MinZoom(road[2])
		way:Attribute("kind", kind)
		local name = way:Find("name")
		if name ~= "" then way:Attribute("name", name, NAME_ZOOM[kind]) end
		local ref = way:Find("ref")
		if ref ~= "" then way:Attribute("ref", ref, 12) end
		local layer = tonumber(way:Find("layer")) or 0
		way:ZOrder(layer * 10 + ({motorway = 9, trunk = 8, primary = 7, secondary = 6, tertiary = 5,
			minor = 4, pedestrian = 3, service = 2, path = 1})[kind])
		return
	end
	if RAIL[railway] and way:Find("service") == "" and way:Find("tunnel") ~= "yes"
			and way:Find("location") ~= "underground" then
		way:Layer("rail", false)
		way:MinZoom(railway == "rail" and 11 or 13)
		way:Attribute("kind", railway)
		return
	end
	if WATERWAY_LINE[waterway] and way:Find("tunnel") ~= "yes" and way:Find("tunnel") ~= "culvert" then
		way:Layer("water", false)
		way:MinZoom(waterway == "stream" and 14 or 11)
		way:Attribute("kind", waterway)
		return
	end
	if not closed then return end
	if building ~= "" and building ~= "no" then
		way:Layer("buildings", true)
		return
	end
	if WATER_NATURAL[natural] or WATER_LANDUSE[landuse] or waterway == "riverbank" or waterway == "dock" then
		way:Layer("water", true)
		way:Attribute("kind", "water")
		return
	end
	local park = nil
	if PARK_LEISURE[leisure] then park = leisure
	elseif PARK_LANDUSE[landuse] then park = landuse
	elseif PARK_NATURAL[natural] then park = natural end
	if park then
		way:Layer("parks", true)
		local area = way:Area()
		if area < 20000 then way:MinZoom(14) elseif area < 200000 then way:MinZoom(12) end
		way:Attribute("kind", park)
		local name = way:Find("name")
		if name ~= "" then way:Attribute("name", name, 14) end
	end
end
