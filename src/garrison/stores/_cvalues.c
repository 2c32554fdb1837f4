/*
 * garrison.stores._cvalues: the stored-value encoder's C accelerator.
 *
 * encode(value) returns exactly the text garrison.stores._values.encode_value
 * returns for value (format 2: orjson's compact JSON of the tagged structure),
 * or None when it leaves the value to the pure encoder: nesting deeper than
 * MAX_DEPTH, a lone surrogate in a string, or a part whose tagged structure
 * (from the Python tag function) it cannot write. The pure encoder then makes
 * the whole text, or raises its error, so both paths agree by construction on
 * everything this file does not write itself.
 *
 * Written natively (exact types only): None, bool, str, int, float, dict
 * (keyword keys as ":ns/name"),
 * list, tuple, set, frozenset, Keyword, Symbol, Vector, and (through their
 * str() and isoformat(), as the tag function does) UUID, datetime and date.
 * Every other part
 * (subclasses, Decimal, datetime, UUID, BigInt, Char, FrozenMap, Tagged, ...)
 * is handed to the pure tag function, whose JSON-ready result is then written
 * as plain JSON: tagging is compositional, so this is the same text.
 *
 * Numbers are written as orjson writes them: int64 in decimal, floats as the
 * shortest round-trip digits (Python's repr digits), in positional notation
 * for decimal exponents -5 to 15 and as "1e-6", "1e+16" outside it. Strings
 * escape '"', '\\' and control characters (\b \t \n \f \r, else \u00xx),
 * nothing else. The tests compare this file with the pure encoder.
 *
 * The text is built as UTF-8 in one growable buffer (strings encoded char by
 * char from their canonical form: PyUnicode_AsUTF8 would cache a UTF-8 copy in
 * each of the user's strings) and decoded once. Public C API only (CPython
 * 3.11-3.13); the GIL is held throughout.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>
#include <stdlib.h>

/* Depths count JSON containers (a marker's object and array are two).
 * orjson refuses 254 levels of nesting and the pure encoder then takes the
 * standard library's path; well below that, so both agree without knowing where. */
#define MAX_DEPTH 200

/* Why encoding stopped: an error set in Python, or a hand-over to the pure encoder. */
#define E_ERROR (-1)
#define E_FALLBACK (-2)

typedef struct {
    PyObject *keyword_type;
    PyObject *symbol_type;
    PyObject *vector_type;
    PyObject *uuid_type;
    PyObject *datetime_type;
    PyObject *date_type;
    PyObject *tag; /* the pure encoder's _tag(value) -> JSON-ready structure */
    PyObject *text_name; /* "text": a Keyword's or Symbol's attribute */
    PyObject *isoformat_name;
} State;

static State state = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};

typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Buffer;

static int
grow(Buffer *b, Py_ssize_t extra)
{
    if (b->len + extra <= b->cap) {
        return 0;
    }
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) {
        cap *= 2;
    }
    char *data = PyMem_Realloc(b->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return E_ERROR;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int
put(Buffer *b, const char *text, Py_ssize_t n)
{
    if (grow(b, n) < 0) {
        return E_ERROR;
    }
    memcpy(b->data + b->len, text, (size_t)n);
    b->len += n;
    return 0;
}

#define PUT_LITERAL(b, s) put((b), (s), (Py_ssize_t)(sizeof(s) - 1))

/* A JSON string of s, with prefix (0 for none) written first inside the quotes. */
static int
put_str_prefixed(Buffer *b, PyObject *s, char prefix)
{
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(s) < 0) { /* a no-op, and deprecated, from 3.12 */
        return E_ERROR;
    }
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    /* Worst case: every char a six-byte \u00xx escape; quotes and prefix around. */
    if (grow(b, 6 * n + 3) < 0) {
        return E_ERROR;
    }
    char *out = b->data + b->len;
    *out++ = '"';
    if (prefix) {
        *out++ = prefix;
    }
    static const char hex[] = "0123456789abcdef";
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= 0x20 && c < 0x80) {
            if (c == '"' || c == '\\') {
                *out++ = '\\';
            }
            *out++ = (char)c;
        }
        else if (c < 0x20) {
            *out++ = '\\';
            switch (c) {
            case '\b': *out++ = 'b'; break;
            case '\t': *out++ = 't'; break;
            case '\n': *out++ = 'n'; break;
            case '\f': *out++ = 'f'; break;
            case '\r': *out++ = 'r'; break;
            default:
                *out++ = 'u';
                *out++ = '0';
                *out++ = '0';
                *out++ = hex[c >> 4];
                *out++ = hex[c & 0xf];
            }
        }
        else if (c < 0x800) {
            *out++ = (char)(0xc0 | (c >> 6));
            *out++ = (char)(0x80 | (c & 0x3f));
        }
        else if (c < 0x10000) {
            if (c >= 0xd800 && c <= 0xdfff) {
                return E_FALLBACK; /* orjson refuses it; the pure path says why */
            }
            *out++ = (char)(0xe0 | (c >> 12));
            *out++ = (char)(0x80 | ((c >> 6) & 0x3f));
            *out++ = (char)(0x80 | (c & 0x3f));
        }
        else {
            *out++ = (char)(0xf0 | (c >> 18));
            *out++ = (char)(0x80 | ((c >> 12) & 0x3f));
            *out++ = (char)(0x80 | ((c >> 6) & 0x3f));
            *out++ = (char)(0x80 | (c & 0x3f));
        }
    }
    *out++ = '"';
    b->len = out - b->data;
    return 0;
}

static int
put_str(Buffer *b, PyObject *s)
{
    return put_str_prefixed(b, s, 0);
}

/* A finite float as orjson writes it, from Python's shortest round-trip digits. */
static int
put_float(Buffer *b, double v)
{
    char *r = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (r == NULL) {
        return E_ERROR;
    }
    int rc;
    char *e = strchr(r, 'e');
    if (e == NULL) {
        rc = put(b, r, (Py_ssize_t)strlen(r)); /* "0.1", "-0.0", "1000000000000000.0" */
    }
    else {
        int exponent = atoi(e + 1);
        if (exponent >= 16) {
            rc = put(b, r, (Py_ssize_t)strlen(r)); /* "1e+16", the same in both */
        }
        else if (exponent >= -5) {
            /* repr switches to "1e-05" below 1e-4, orjson only below 1e-5:
             * "2.5e-05" is written "0.000025". */
            char out[64];
            Py_ssize_t n = 0;
            const char *p = r;
            if (*p == '-') {
                out[n++] = *p++;
            }
            out[n++] = '0';
            out[n++] = '.';
            for (int zeros = -exponent - 1; zeros > 0; zeros--) {
                out[n++] = '0';
            }
            for (; p < e; p++) {
                if (*p != '.') {
                    out[n++] = *p;
                }
            }
            rc = put(b, out, n);
        }
        else {
            /* "1e-07" is written "1e-7": no zero padding of the exponent. */
            char out[64];
            Py_ssize_t n = e - r;
            memcpy(out, r, (size_t)n);
            out[n++] = 'e';
            n += snprintf(out + n, sizeof(out) - (size_t)n, "%d", exponent);
            rc = put(b, out, n);
        }
    }
    PyMem_Free(r);
    return rc;
}

static int put_tagged(Buffer *b, PyObject *value, int depth);
static int put_plain(Buffer *b, PyObject *node, int depth);

/* {"<marker>":<text>} for a marker whose payload is one string: text is a
 * new reference (or NULL with an error set), consumed here. */
static int
put_marked_text(Buffer *b, const char *opening, Py_ssize_t n, PyObject *text)
{
    if (text == NULL) {
        return E_ERROR;
    }
    int rc = E_FALLBACK;
    if (PyUnicode_CheckExact(text)) {
        rc = put(b, opening, n);
        if (rc == 0) {
            rc = put_str(b, text);
        }
        if (rc == 0) {
            rc = PUT_LITERAL(b, "}");
        }
    }
    Py_DECREF(text);
    return rc;
}

/* The items of any iterable as a JSON array of their tagged forms. */
static int
put_items(Buffer *b, PyObject *iterable, int depth)
{
    if (PUT_LITERAL(b, "[") < 0) {
        return E_ERROR;
    }
    if (PyList_CheckExact(iterable) || PyTuple_CheckExact(iterable)
        || (PyObject *)Py_TYPE(iterable) == state.vector_type) {
        PyObject *seq = iterable;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (i && PUT_LITERAL(b, ",") < 0) {
                return E_ERROR;
            }
            /* A list may shrink while a tag call runs: re-read the size. */
            if (i >= PySequence_Fast_GET_SIZE(seq)) {
                return E_FALLBACK;
            }
            PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
            Py_INCREF(item);
            int rc = put_tagged(b, item, depth);
            Py_DECREF(item);
            if (rc < 0) {
                return rc;
            }
        }
    }
    else {
        PyObject *it = PyObject_GetIter(iterable);
        if (it == NULL) {
            return E_ERROR;
        }
        PyObject *item;
        int first = 1;
        while ((item = PyIter_Next(it)) != NULL) {
            int rc = first ? 0 : PUT_LITERAL(b, ",");
            first = 0;
            if (rc == 0) {
                rc = put_tagged(b, item, depth);
            }
            Py_DECREF(item);
            if (rc < 0) {
                Py_DECREF(it);
                return rc;
            }
        }
        Py_DECREF(it);
        if (PyErr_Occurred()) {
            return E_ERROR;
        }
    }
    return PUT_LITERAL(b, "]");
}

static int
put_dict(Buffer *b, PyObject *dict, int depth)
{
    PyObject *key, *item;
    Py_ssize_t pos = 0;
    Py_ssize_t size = PyDict_GET_SIZE(dict);
    /* An object when every key is a keyword or a string not starting with ':'
     * (an object key starting with ':' spells a keyword). */
    int object_keys = 1;
    while (PyDict_Next(dict, &pos, &key, &item)) {
        if ((PyObject *)Py_TYPE(key) == state.keyword_type) {
            continue;
        }
        if (!PyUnicode_CheckExact(key)
            || (PyUnicode_GET_LENGTH(key) > 0 && PyUnicode_READ_CHAR(key, 0) == ':')) {
            object_keys = 0;
            break;
        }
    }
    int rc;
    pos = 0;
    if (!object_keys) {
        /* {"#map":[[key,value],...]} */
        if (PUT_LITERAL(b, "{\"#map\":[") < 0) {
            return E_ERROR;
        }
        int first = 1;
        while (PyDict_Next(dict, &pos, &key, &item)) {
            if ((first ? PUT_LITERAL(b, "[") : PUT_LITERAL(b, ",[")) < 0) {
                return E_ERROR;
            }
            first = 0;
            Py_INCREF(key);
            Py_INCREF(item);
            /* {"#map":[[ opens two more levels around each key and value. */
            rc = put_tagged(b, key, depth + 2);
            if (rc == 0) {
                rc = PUT_LITERAL(b, ",");
            }
            if (rc == 0) {
                rc = put_tagged(b, item, depth + 2);
            }
            Py_DECREF(key);
            Py_DECREF(item);
            if (rc < 0) {
                return rc;
            }
            if (PUT_LITERAL(b, "]") < 0) {
                return E_ERROR;
            }
        }
        if (PyDict_GET_SIZE(dict) != size) {
            return E_FALLBACK; /* changed by a tag call while written */
        }
        return PUT_LITERAL(b, "]}");
    }
    /* A one-key dict whose key starts with '#' looks like a marker: escaped. */
    int escaped = 0;
    if (PyDict_GET_SIZE(dict) == 1) {
        PyDict_Next(dict, &pos, &key, &item);
        pos = 0;
        escaped = PyUnicode_CheckExact(key) && PyUnicode_GET_LENGTH(key) > 0
                  && PyUnicode_READ_CHAR(key, 0) == '#';
    }
    if (escaped && PUT_LITERAL(b, "{\"#esc\":") < 0) {
        return E_ERROR;
    }
    if (PUT_LITERAL(b, "{") < 0) {
        return E_ERROR;
    }
    int first = 1;
    while (PyDict_Next(dict, &pos, &key, &item)) {
        if (!first && PUT_LITERAL(b, ",") < 0) {
            return E_ERROR;
        }
        first = 0;
        Py_INCREF(key);
        Py_INCREF(item);
        if ((PyObject *)Py_TYPE(key) == state.keyword_type) {
            PyObject *text = PyObject_GetAttr(key, state.text_name);
            if (text == NULL) {
                rc = E_ERROR;
            }
            else {
                rc = PyUnicode_CheckExact(text) ? put_str_prefixed(b, text, ':') : E_FALLBACK;
                Py_DECREF(text);
            }
        }
        else if (PyUnicode_CheckExact(key)
                 && !(PyUnicode_GET_LENGTH(key) > 0 && PyUnicode_READ_CHAR(key, 0) == ':')) {
            rc = put_str(b, key);
        }
        else {
            rc = E_FALLBACK; /* changed by a tag call while written */
        }
        if (rc == 0) {
            rc = PUT_LITERAL(b, ":");
        }
        if (rc == 0) {
            rc = put_tagged(b, item, depth + escaped);
        }
        Py_DECREF(key);
        Py_DECREF(item);
        if (rc < 0) {
            return rc;
        }
    }
    if (PyDict_GET_SIZE(dict) != size) {
        return E_FALLBACK; /* changed by a tag call while written */
    }
    if (PUT_LITERAL(b, "}") < 0) {
        return E_ERROR;
    }
    return escaped ? PUT_LITERAL(b, "}") : 0;
}

/* Scalars written the same in the tagged and the plain form; 1 when not a scalar. */
static int
put_scalar(Buffer *b, PyObject *value)
{
    if (value == Py_None) {
        return PUT_LITERAL(b, "null");
    }
    if (value == Py_True) {
        return PUT_LITERAL(b, "true");
    }
    if (value == Py_False) {
        return PUT_LITERAL(b, "false");
    }
    if (PyUnicode_CheckExact(value)) {
        return put_str(b, value);
    }
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow == 0) {
            if (n == -1 && PyErr_Occurred()) {
                return E_ERROR;
            }
            char digits[32];
            int len = snprintf(digits, sizeof(digits), "%lld", n);
            return put(b, digits, len);
        }
        return 1; /* beyond 64 bits: a marker in the tagged form */
    }
    if (PyFloat_CheckExact(value)) {
        double v = PyFloat_AS_DOUBLE(value);
        return isfinite(v) ? put_float(b, v) : 1;
    }
    return 1;
}

/* JSON of a structure the pure tag function returned (already tagged: no markers added). */
static int
put_plain(Buffer *b, PyObject *node, int depth)
{
    if (depth > MAX_DEPTH) {
        return E_FALLBACK;
    }
    int rc = put_scalar(b, node);
    if (rc <= 0) {
        return rc;
    }
    if (PyList_CheckExact(node)) {
        if (PUT_LITERAL(b, "[") < 0) {
            return E_ERROR;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(node); i++) {
            if (i && PUT_LITERAL(b, ",") < 0) {
                return E_ERROR;
            }
            rc = put_plain(b, PyList_GET_ITEM(node, i), depth + 1);
            if (rc < 0) {
                return rc;
            }
        }
        return PUT_LITERAL(b, "]");
    }
    if (PyDict_CheckExact(node)) {
        PyObject *key, *item;
        Py_ssize_t pos = 0;
        if (PUT_LITERAL(b, "{") < 0) {
            return E_ERROR;
        }
        int first = 1;
        while (PyDict_Next(node, &pos, &key, &item)) {
            if (!PyUnicode_CheckExact(key)) {
                return E_FALLBACK;
            }
            if (!first && PUT_LITERAL(b, ",") < 0) {
                return E_ERROR;
            }
            first = 0;
            rc = put_str(b, key);
            if (rc == 0) {
                rc = PUT_LITERAL(b, ":");
            }
            if (rc == 0) {
                rc = put_plain(b, item, depth + 1);
            }
            if (rc < 0) {
                return rc;
            }
        }
        return PUT_LITERAL(b, "}");
    }
    return E_FALLBACK; /* not JSON-ready: the pure path raises or copes */
}

/* The stored text of any value, as the pure encoder writes it. */
static int
put_tagged(Buffer *b, PyObject *value, int depth)
{
    if (depth > MAX_DEPTH) {
        return E_FALLBACK;
    }
    int rc = put_scalar(b, value);
    if (rc <= 0) {
        return rc;
    }
    PyTypeObject *type = Py_TYPE(value);
    if (type == &PyDict_Type) {
        return put_dict(b, value, depth + 1);
    }
    if (type == &PyList_Type) {
        return put_items(b, value, depth + 1);
    }
    if ((PyObject *)type == state.keyword_type) {
        return put_marked_text(b, "{\"#k\":", 6, PyObject_GetAttr(value, state.text_name));
    }
    if ((PyObject *)type == state.symbol_type) {
        return put_marked_text(b, "{\"#sym\":", 8, PyObject_GetAttr(value, state.text_name));
    }
    /* As the pure tag function writes them: str() and isoformat(). */
    if ((PyObject *)type == state.uuid_type) {
        return put_marked_text(b, "{\"#uuid\":", 9, PyObject_Str(value));
    }
    if ((PyObject *)type == state.datetime_type) {
        return put_marked_text(
            b, "{\"#inst\":", 9, PyObject_CallMethodNoArgs(value, state.isoformat_name));
    }
    if ((PyObject *)type == state.date_type) {
        return put_marked_text(
            b, "{\"#date\":", 9, PyObject_CallMethodNoArgs(value, state.isoformat_name));
    }
    const char *opening = NULL;
    if ((PyObject *)type == state.vector_type) {
        opening = "{\"#vec\":";
    }
    else if (type == &PyTuple_Type) {
        opening = "{\"#list\":";
    }
    else if (type == &PyFrozenSet_Type) {
        opening = "{\"#set\":";
    }
    else if (type == &PySet_Type) {
        opening = "{\"#mutset\":";
    }
    if (opening != NULL) {
        if (put(b, opening, (Py_ssize_t)strlen(opening)) < 0) {
            return E_ERROR;
        }
        rc = put_items(b, value, depth + 2);
        return rc < 0 ? rc : PUT_LITERAL(b, "}");
    }
    /* Big ints, non-finite floats and every other kind: the pure tag function. */
    PyObject *node = PyObject_CallOneArg(state.tag, value);
    if (node == NULL) {
        if (PyErr_ExceptionMatches(PyExc_Exception)) {
            PyErr_Clear(); /* the pure path raises the same error, with its message */
            return E_FALLBACK;
        }
        return E_ERROR; /* KeyboardInterrupt and the like go on */
    }
    rc = put_plain(b, node, depth);
    Py_DECREF(node);
    return rc;
}

static PyObject *
encode(PyObject *module, PyObject *value)
{
    if (state.tag == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "garrison.stores._cvalues is not configured");
        return NULL;
    }
    Buffer b = {NULL, 0, 0};
    int rc = put_tagged(&b, value, 0);
    PyObject *result = NULL;
    if (rc == 0) {
        result = PyUnicode_DecodeUTF8(b.data, b.len, "strict");
    }
    else if (rc == E_FALLBACK) {
        result = Py_NewRef(Py_None);
    }
    PyMem_Free(b.data);
    return result;
}

static PyObject *
configure(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"keyword", "symbol", "vector", "uuid", "datetime", "date", "tag", NULL};
    PyObject *keyword, *symbol, *vector, *uuid, *datetime, *date, *tag;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$OOOOOOO:configure", names, &keyword,
                                     &symbol, &vector, &uuid, &datetime, &date, &tag)) {
        return NULL;
    }
    if (!PyType_Check(keyword) || !PyType_Check(symbol) || !PyType_Check(vector)
        || !PyType_Check(uuid) || !PyType_Check(datetime) || !PyType_Check(date)
        || !PyCallable_Check(tag)) {
        PyErr_SetString(PyExc_TypeError, "configure() wants six types and a callable");
        return NULL;
    }
    Py_XSETREF(state.keyword_type, Py_NewRef(keyword));
    Py_XSETREF(state.symbol_type, Py_NewRef(symbol));
    Py_XSETREF(state.vector_type, Py_NewRef(vector));
    Py_XSETREF(state.uuid_type, Py_NewRef(uuid));
    Py_XSETREF(state.datetime_type, Py_NewRef(datetime));
    Py_XSETREF(state.date_type, Py_NewRef(date));
    Py_XSETREF(state.tag, Py_NewRef(tag));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "configure(*, keyword, symbol, vector, uuid, datetime, date, tag): the types written "
     "natively and the pure tag function."},
    {"encode", encode, METH_O,
     "encode(value): the stored text of value, or None to leave it to the pure encoder."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "garrison.stores._cvalues",
    "C accelerator of garrison.stores._values.encode_value (value format 2).",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__cvalues(void)
{
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    if (state.text_name == NULL) {
        state.text_name = PyUnicode_InternFromString("text");
        state.isoformat_name = PyUnicode_InternFromString("isoformat");
        if (state.text_name == NULL || state.isoformat_name == NULL) {
            Py_DECREF(module);
            return NULL;
        }
    }
    if (PyModule_AddIntConstant(module, "MAX_DEPTH", MAX_DEPTH) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
