"""The simulator: a realistic feed for training, the demo and the tests.

The demo caseload of the eight pilot boroughs, daily routines, path planning, the tags
(noise, battery, buffering), scripted incidents and scenarios, the ground truth a test checks
against, and publishing to a broker. It stands outside the flow, as a gateway would: it may
import the feed (to publish) and the caseload, never the engine's decisions, the store or the UI.
"""
