/* Compiled fast paths for the feed decoder: the same checks as the pure-Python code, in C.
 *
 * parse_utc(s)        the feed's usual time form, "YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z", to epoch
 *                     seconds (the minute's whole seconds plus float("SS.f"), as timeutil sums
 *                     them; a leap second ":60" is the next second); None for anything else
 *                     (the caller then takes the full RFC 3339 path, which accepts offsets and
 *                     gives the error text).
 * fast_fix(obj, known[, rx])
 *                     monitorapp.feed.decoder.FixDecoder._fast_fix: a parsed fix dict with rx
 *                     (or, live, the arrival time rx as a float, when the payload's rx is not
 *                     read), a known device and every value of the usual type in range (t and
 *                     a payload rx in 2000..2100, seq at most 2^53 - 1) becomes a Fix; anything
 *                     else gives None and the caller takes the full path, which accepts a
 *                     superset of this and names each rejection's reason.
 * bind(Fix, fields)   tells fast_fix the Fix class and the order of its slots.
 *
 * The module is optional: monitorapp works without it (same results, slower). tests/
 * test_speedups.py checks it against the Python code on generated input.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>

#define NFIELDS 12
static PyTypeObject *fix_type = NULL;
static Py_ssize_t fix_offsets[NFIELDS];

static PyObject *s_v, *s_device, *s_seq, *s_lat, *s_lon, *s_acc, *s_src, *s_t, *s_rx,
    *s_batt, *s_spd, *s_hdg, *s_sats, *s_gps, *s_wifi, *s_cell;

static const double FUTURE_LIMIT_S = 300.0;
static const double T_MIN = 946684800.0;      /* 2000-01-01T00:00:00Z, as decoder.T_MIN */
static const double T_MAX = 4102444800.0;     /* 2100-01-01T00:00:00Z, as decoder.T_MAX */
static const long long SEQ_MAX = 9007199254740991LL;   /* 2^53 - 1 */

static int digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's algorithm). */
static long long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (long long)era * 146097 + (long long)doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dim[m - 1];
}

/* 1 and *out set for the usual UTC form; 0 for anything else (no Python error set). */
static int parse_utc_c(PyObject *s, double *out)
{
    if (!PyUnicode_CheckExact(s) || !PyUnicode_IS_ASCII(s))
        return 0;
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (n < 20 || n > 30)
        return 0;
    const char *p = (const char *)PyUnicode_DATA(s);
    int y, mo, d, h, mi, se;
    if (p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' || p[16] != ':' || p[n - 1] != 'Z')
        return 0;
    if (!digits(p, 4, &y) || !digits(p + 5, 2, &mo) || !digits(p + 8, 2, &d) || !digits(p + 11, 2, &h)
        || !digits(p + 14, 2, &mi) || !digits(p + 17, 2, &se))
        return 0;
    if (n > 20) {                       /* ".f{1,9}" between the seconds and the Z */
        if (p[19] != '.' || n == 21)
            return 0;
        for (Py_ssize_t i = 20; i < n - 1; i++)
            if (p[i] < '0' || p[i] > '9')
                return 0;
    }
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 60)
        return 0;
    double sec;
    if (n == 20) {
        sec = (double)se;
    } else {
        /* "SS.fff" as Python's float() reads it, so the result is bit-for-bit the pure path's */
        char buf[16];
        Py_ssize_t len = n - 1 - 17;
        memcpy(buf, p + 17, (size_t)len);
        buf[len] = '\0';
        sec = PyOS_string_to_double(buf, NULL, NULL);
        if (sec == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
    }
    double base = (double)(days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL);
    *out = base + sec;
    return 1;
}

static PyObject *py_parse_utc(PyObject *self, PyObject *s)
{
    double v;
    if (parse_utc_c(s, &v))
        return PyFloat_FromDouble(v);
    Py_RETURN_NONE;
}

/* A borrowed value of obj[key], or NULL when absent (no error set). */
static PyObject *item(PyObject *obj, PyObject *key)
{
    return PyDict_GetItemWithError(obj, key);
}

/* An optional field: *out borrowed, or NULL when absent or null; -1 with an error set, else 0. */
static int present(PyObject *obj, PyObject *key, PyObject **out)
{
    PyObject *v = item(obj, key);
    *out = v == Py_None ? NULL : v;
    return v == NULL && PyErr_Occurred() ? -1 : 0;
}

/* spd/hdg: absent or null -> 0, *out NULL; an int or float in [0, hi] -> 0, *out a new float;
 * any other value -> -1 (no error set); a Python error -> -2. */
static int optional_number(PyObject *obj, PyObject *key, double hi, PyObject **out)
{
    PyObject *v;
    *out = NULL;
    if (present(obj, key, &v) < 0)
        return -2;
    if (v == NULL)
        return 0;
    double x;
    if (PyFloat_CheckExact(v)) {
        x = PyFloat_AS_DOUBLE(v);
    } else if (PyLong_CheckExact(v)) {
        x = PyLong_AsDouble(v);
        if (x == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return -1;
        }
    } else {
        return -1;
    }
    if (!(x >= 0.0 && x <= hi))
        return -1;
    *out = PyFloat_FromDouble(x);
    return *out == NULL ? -2 : 0;
}

static PyObject *py_fast_fix(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 && nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "fast_fix(obj, known[, rx]) takes two or three arguments");
        return NULL;
    }
    PyObject *obj = args[0], *known = args[1], *arrival = nargs == 3 ? args[2] : Py_None;
    if (fix_type == NULL || !PyDict_CheckExact(obj) || known == Py_None || PyCallable_Check(known))
        Py_RETURN_NONE;
    if (arrival != Py_None && !PyFloat_CheckExact(arrival))
        Py_RETURN_NONE;
    PyObject *v = item(obj, s_v), *device = item(obj, s_device), *seq = item(obj, s_seq),
             *lat = item(obj, s_lat), *lon = item(obj, s_lon), *acc = item(obj, s_acc),
             *src = item(obj, s_src), *t = item(obj, s_t);
    /* live, the arrival time is rx and the payload's rx is not read (decoder.py's docstring) */
    PyObject *rx = arrival != Py_None ? arrival : item(obj, s_rx);
    if (PyErr_Occurred())
        return NULL;
    if (!v || !device || !seq || !lat || !lon || !acc || !src || !t || !rx)
        Py_RETURN_NONE;
    double tv, rxv;
    if (!parse_utc_c(t, &tv) || !(tv >= T_MIN && tv <= T_MAX))
        Py_RETURN_NONE;
    if (arrival != Py_None) {
        rxv = PyFloat_AS_DOUBLE(arrival);
    } else if (!parse_utc_c(rx, &rxv) || !(rxv >= T_MIN && rxv <= T_MAX)) {
        Py_RETURN_NONE;
    }
    if (!PyLong_CheckExact(v) || PyLong_AsLong(v) != 1) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    if (!PyLong_CheckExact(seq) || !PyUnicode_CheckExact(device))
        Py_RETURN_NONE;
    int seq_overflow;
    long long seq_value = PyLong_AsLongLongAndOverflow(seq, &seq_overflow);
    if (seq_overflow != 0 || seq_value < 0 || seq_value > SEQ_MAX)
        Py_RETURN_NONE;
    if (!PyFloat_CheckExact(lat) || !PyFloat_CheckExact(lon))
        Py_RETURN_NONE;
    double la = PyFloat_AS_DOUBLE(lat), lo = PyFloat_AS_DOUBLE(lon);
    if (!(la >= -90.0 && la <= 90.0) || !(lo >= -180.0 && lo <= 180.0))
        Py_RETURN_NONE;
    if (!PyUnicode_CheckExact(src))
        Py_RETURN_NONE;
    if (PyUnicode_Compare(src, s_gps) != 0 && PyUnicode_Compare(src, s_wifi) != 0
        && PyUnicode_Compare(src, s_cell) != 0)
        Py_RETURN_NONE;
    if (tv - rxv > FUTURE_LIMIT_S)
        Py_RETURN_NONE;
    double accv;
    if (PyFloat_CheckExact(acc)) {
        accv = PyFloat_AS_DOUBLE(acc);
    } else if (PyLong_CheckExact(acc)) {
        accv = PyLong_AsDouble(acc);
        if (accv == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
    } else {
        Py_RETURN_NONE;
    }
    if (!(accv > 0.0 && accv <= 1e6))
        Py_RETURN_NONE;
    int c = PySequence_Contains(known, device);
    if (c < 0)
        return NULL;
    if (c == 0)
        Py_RETURN_NONE;

    PyObject *batt, *sats;
    if (present(obj, s_batt, &batt) < 0 || present(obj, s_sats, &sats) < 0)
        return NULL;
    if (batt != NULL) {
        if (!PyFloat_CheckExact(batt))
            Py_RETURN_NONE;
        double b = PyFloat_AS_DOUBLE(batt);
        if (!(b >= 0.0 && b <= 1.0))
            Py_RETURN_NONE;
    }
    if (sats != NULL) {
        if (!PyLong_CheckExact(sats))
            Py_RETURN_NONE;
        int overflow;
        long long k = PyLong_AsLongLongAndOverflow(sats, &overflow);
        if (overflow || k < 0 || k > 1000)
            Py_RETURN_NONE;
    }
    PyObject *spd, *hdg;
    int r = optional_number(obj, s_spd, 1000.0, &spd);
    if (r == 0) {
        r = optional_number(obj, s_hdg, 360.0, &hdg);
        if (r < 0)
            Py_XDECREF(spd);
    }
    if (r == -1)
        Py_RETURN_NONE;
    if (r < 0)
        return NULL;

    PyObject *fields[NFIELDS];
    fields[0] = Py_NewRef(device);
    fields[1] = Py_NewRef(seq);
    fields[2] = PyFloat_FromDouble(tv);
    fields[3] = arrival != Py_None ? Py_NewRef(arrival) : PyFloat_FromDouble(rxv);
    fields[4] = Py_NewRef(lat);
    fields[5] = Py_NewRef(lon);
    fields[6] = PyFloat_CheckExact(acc) ? Py_NewRef(acc) : PyFloat_FromDouble(accv);
    fields[7] = Py_NewRef(src);
    fields[8] = spd ? spd : Py_NewRef(Py_None);
    fields[9] = hdg ? hdg : Py_NewRef(Py_None);
    fields[10] = Py_NewRef(sats ? sats : Py_None);
    fields[11] = Py_NewRef(batt ? batt : Py_None);
    PyObject *fix = NULL;
    if (fields[2] && fields[3] && fields[6])
        fix = fix_type->tp_alloc(fix_type, 0);
    if (fix == NULL) {
        for (int i = 0; i < NFIELDS; i++)
            Py_XDECREF(fields[i]);
        return NULL;
    }
    /* the same as Fix.__init__ assigning each slot, which is all a slots dataclass does */
    for (int i = 0; i < NFIELDS; i++)
        *(PyObject **)((char *)fix + fix_offsets[i]) = fields[i];
    return fix;
}

static PyObject *py_bind(PyObject *self, PyObject *args)
{
    PyObject *cls, *names;
    if (!PyArg_ParseTuple(args, "O!O!", &PyType_Type, &cls, &PyTuple_Type, &names))
        return NULL;
    if (PyTuple_GET_SIZE(names) != NFIELDS) {
        PyErr_Format(PyExc_ValueError, "Fix has %zd fields; this module knows %d",
                     PyTuple_GET_SIZE(names), NFIELDS);
        return NULL;
    }
    PyTypeObject *tp = (PyTypeObject *)cls;
    Py_ssize_t offsets[NFIELDS];
    if (PyObject_HasAttrString(cls, "__post_init__")) {
        PyErr_SetString(PyExc_ValueError, "Fix has a __post_init__, which fast_fix would skip");
        return NULL;
    }
    for (int i = 0; i < NFIELDS; i++) {
        PyObject *descr = PyDict_GetItemWithError(tp->tp_dict, PyTuple_GET_ITEM(names, i));
        if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "Fix.%U is not a slot", PyTuple_GET_ITEM(names, i));
            return NULL;
        }
        PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
        if (m->type != T_OBJECT_EX) {
            PyErr_Format(PyExc_ValueError, "Fix.%U is not an object slot", PyTuple_GET_ITEM(names, i));
            return NULL;
        }
        offsets[i] = m->offset;
    }
    memcpy(fix_offsets, offsets, sizeof offsets);
    Py_XSETREF(fix_type, (PyTypeObject *)Py_NewRef(cls));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"parse_utc", py_parse_utc, METH_O, "The usual UTC time form to epoch seconds, or None."},
    {"fast_fix", (PyCFunction)(void (*)(void))py_fast_fix, METH_FASTCALL,
     "A Fix from a parsed v1 fix dict in the common form, or None."},
    {"bind", py_bind, METH_VARARGS, "bind(Fix, field_names): the class fast_fix makes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "monitorapp._speedups", "Compiled fast paths of the feed decoder.", -1, methods,
};

#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL

PyMODINIT_FUNC PyInit__speedups(void)
{
    INTERN(s_v, "v");
    INTERN(s_device, "device");
    INTERN(s_seq, "seq");
    INTERN(s_lat, "lat");
    INTERN(s_lon, "lon");
    INTERN(s_acc, "acc");
    INTERN(s_src, "src");
    INTERN(s_t, "t");
    INTERN(s_rx, "rx");
    INTERN(s_batt, "batt");
    INTERN(s_spd, "spd");
    INTERN(s_hdg, "hdg");
    INTERN(s_sats, "sats");
    INTERN(s_gps, "gps");
    INTERN(s_wifi, "wifi");
    INTERN(s_cell, "cell");
    return PyModule_Create(&module);
}
