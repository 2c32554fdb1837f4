/*
 * garrison.edn._cwriter: the EDN writer's C accelerator.
 *
 * encode(value, sort_keys, strict, coerce) returns exactly the text that the
 * pure-Python encoder (garrison.edn._encoder) returns, or raises
 * Fallback when it meets something it does not write exactly itself (nesting
 * deeper than MAX_DEPTH, map keys with equal texts under sort_keys, lone
 * surrogates inside sorted texts, a container changed while it is written, an
 * invalid tag): the caller then lets the pure writer produce the whole text or
 * its error. Any other exception comes from Python code the writer called
 * (named_text, coerce, default, scalar writers) and is left to the caller too.
 *
 * The text is built as UTF-8 in one growable buffer, strings encoded char by
 * char from their canonical representation (PyUnicode_AsUTF8 would cache a
 * UTF-8 copy inside each of the user's strings), then decoded once. Lone
 * surrogates, which UTF-8 cannot hold, are written \uXXXX as the pure writer's
 * final pass writes them.
 *
 * Public C API only (CPython 3.11-3.13); the GIL is held except for the
 * periodic releases described below.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <math.h>
#include <string.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>

#include "_gil_turns.h"

/* Deeper than this, the pure writer (iterative, to the reader's depth) writes the text. A
 * level costs about 320 bytes of C stack, so 512 levels fit in small thread stacks. */
#define MAX_DEPTH 512
/* Keyword, symbol and tag caches are emptied when they reach this size. */
#define CACHE_LIMIT 65536

/* Keywords and symbols remembered by address, per strict mode (a power of two). */
#define NAMED_SLOTS 4096

typedef struct {
    PyObject *obj;   /* a Keyword or Symbol */
    PyObject *bytes; /* its EDN text, UTF-8 */
    int used;        /* hit since it was last spared: a one-off name does not evict it */
} NamedSlot;

typedef struct {
    int configured;
    PyObject *keyword_type;
    PyObject *symbol_type;
    PyObject *bigint_type;
    PyObject *vector_type;
    PyObject *frozen_map_type;
    PyObject *edn_map_type; /* written by the pure writer, glued to a tag like a map */
    PyObject *tagged_type;
    PyObject *raw_type;
    PyObject *uuid_type;
    PyObject *scalars;       /* dict: exact type -> function(value) -> str */
    PyObject *tag_match;     /* function(tag) -> match or None */
    PyObject *named_text;    /* function(keyword_or_symbol, strict) -> str */
    PyObject *long_int_text; /* function(int) -> str, past int's str() digit limit */
    PyObject *orjson_dumps;  /* orjson.dumps, or None */
    PyObject *fallback;      /* the exception class Fallback */
    PyObject *named[2][2];   /* [symbol?][strict?]: dict text -> UTF-8 bytes of the EDN text */
    PyObject *tags;          /* set of tags known to be valid */
    PyObject *s_text, *s_tag, *s_value, *s_int, *s_data;
    PyObject *sixty_four;
    NamedSlot *slots[2]; /* [strict?], NAMED_SLOTS each */
} State;

static inline State *
get_state(PyObject *module)
{
    return (State *)PyModule_GetState(module);
}

typedef struct {
    State *st;
    char *buf;
    Py_ssize_t len, cap;
    int sort_keys, strict;
    PyObject *coerce;
    Py_ssize_t surrogates; /* lone surrogates written so far */
    int depth;
    GilTurns turns;        /* other threads' turns during a large output */
} Writer;

/* ------------------------------------------------------------------ buffer */

static int
grow(Writer *w, Py_ssize_t extra)
{
    if (extra > PY_SSIZE_T_MAX - w->len) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t need = w->len + extra;
    Py_ssize_t cap = w->cap ? w->cap : 256;
    while (cap < need) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *buf = PyMem_Realloc(w->buf, (size_t)cap);
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    w->buf = buf;
    w->cap = cap;
    return 0;
}

#define RESERVE(w, n) (((w)->cap - (w)->len >= (n)) ? 0 : grow((w), (n)))

static inline int
put(Writer *w, const char *s, Py_ssize_t n)
{
    if (n == 0)
        return 0; /* w->buf may still be NULL: memcpy must not see it */
    if (RESERVE(w, n) < 0)
        return -1;
    memcpy(w->buf + w->len, s, (size_t)n);
    w->len += n;
    return 0;
}

#define PUT_LITERAL(w, s) put((w), (s), (Py_ssize_t)(sizeof(s) - 1))

static inline int
put1(Writer *w, char c)
{
    if (RESERVE(w, 1) < 0)
        return -1;
    w->buf[w->len++] = c;
    return 0;
}

/* Called between elements, where every object the writer is in holds a strong
 * reference; a container another thread changes meanwhile is caught by the
 * size checks (maps) or the iterator (sets), and lists are re-read per index. */
static inline void
maybe_yield(Writer *w)
{
    gil_turns_maybe(&w->turns, w->len);
}

static int
fallback(Writer *w, const char *why)
{
    PyErr_SetString(w->st->fallback, why);
    return -1;
}

/* ----------------------------------------------------------------- strings */

static const char HEX[] = "0123456789abcdef";
/* For str values (json.encoder.encode_basestring's escapes): 0 = as is, 'u' =
 * \u00XX, otherwise the letter after the backslash. */
static unsigned char ESCAPE[128];

static void
init_escapes(void)
{
    for (int c = 0; c < 0x20; c++)
        ESCAPE[c] = 'u';
    ESCAPE['\b'] = 'b';
    ESCAPE['\f'] = 'f';
    ESCAPE['\n'] = 'n';
    ESCAPE['\r'] = 'r';
    ESCAPE['\t'] = 't';
    ESCAPE['"'] = '"';
    ESCAPE['\\'] = '\\';
}

/* One code point as UTF-8 (at most 6 bytes written). */
static inline char *
encode_char(char *o, Py_UCS4 c, int json, Py_ssize_t *surrogates)
{
    if (c < 0x80) {
        unsigned char e = json ? ESCAPE[c] : 0;
        if (e == 0) {
            *o++ = (char)c;
        }
        else if (e == 'u') {
            *o++ = '\\';
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = HEX[c >> 4];
            *o++ = HEX[c & 15];
        }
        else {
            *o++ = '\\';
            *o++ = (char)e;
        }
    }
    else if (c < 0x800) {
        *o++ = (char)(0xC0 | (c >> 6));
        *o++ = (char)(0x80 | (c & 0x3F));
    }
    else if (c < 0x10000) {
        if (c >= 0xD800 && c <= 0xDFFF) {
            *o++ = '\\';
            *o++ = 'u';
            *o++ = HEX[(c >> 12) & 15];
            *o++ = HEX[(c >> 8) & 15];
            *o++ = HEX[(c >> 4) & 15];
            *o++ = HEX[c & 15];
            (*surrogates)++;
        }
        else {
            *o++ = (char)(0xE0 | (c >> 12));
            *o++ = (char)(0x80 | ((c >> 6) & 0x3F));
            *o++ = (char)(0x80 | (c & 0x3F));
        }
    }
    else {
        *o++ = (char)(0xF0 | (c >> 18));
        *o++ = (char)(0x80 | ((c >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((c >> 6) & 0x3F));
        *o++ = (char)(0x80 | (c & 0x3F));
    }
    return o;
}

/* Characters encoded per reservation: bounds the buffer a huge string needs ahead. */
#define CHUNK 4096

/* The characters of a str: escaped as a str value (json) or as they are (texts
 * of keywords, tags, scalar writers), lone surrogates as \uXXXX either way. */
static int
write_chars(Writer *w, PyObject *s, int json)
{
#if PY_VERSION_HEX < 0x030C0000
    /* Only strings built with the legacy wstr API can be unready (gone in 3.12). */
    if (PyUnicode_READY(s) < 0)
        return -1;
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    if (kind == PyUnicode_1BYTE_KIND) {
        const unsigned char *p = (const unsigned char *)data;
        if (!json && PyUnicode_IS_ASCII(s))
            return put(w, (const char *)p, n);
        Py_ssize_t i = 0;
        while (i < n) {
            Py_ssize_t j = i;
            while (j < n && p[j] < 0x80 && !(json && ESCAPE[p[j]]))
                j++;
            if (put(w, (const char *)p + i, j - i) < 0)
                return -1;
            /* Then a run of characters to encode, up to the next plain one. */
            i = j;
            while (i < n) {
                Py_ssize_t end = n - i < CHUNK ? n : i + CHUNK;
                if (RESERVE(w, 6 * (end - i)) < 0)
                    return -1;
                char *o = w->buf + w->len;
                while (i < end && (p[i] >= 0x80 || (json && ESCAPE[p[i]])))
                    o = encode_char(o, p[i++], json, &w->surrogates);
                w->len = o - w->buf;
                if (i < end)
                    break;
            }
        }
        return 0;
    }
    Py_ssize_t i = 0;
    while (i < n) {
        Py_ssize_t end = n - i < CHUNK ? n : i + CHUNK;
        if (RESERVE(w, 6 * (end - i)) < 0)
            return -1;
        char *o = w->buf + w->len;
        if (kind == PyUnicode_2BYTE_KIND) {
            const Py_UCS2 *p = (const Py_UCS2 *)data;
            for (; i < end; i++)
                o = encode_char(o, p[i], json, &w->surrogates);
        }
        else {
            const Py_UCS4 *p = (const Py_UCS4 *)data;
            for (; i < end; i++)
                o = encode_char(o, p[i], json, &w->surrogates);
        }
        w->len = o - w->buf;
    }
    return 0;
}

static int
write_str(Writer *w, PyObject *s)
{
    if (put1(w, '"') < 0 || write_chars(w, s, 1) < 0)
        return -1;
    return put1(w, '"');
}

/* A text returned by Python code (a scalar writer, coerce's Raw): must be a str. */
static int
write_text_result(Writer *w, PyObject *text)
{
    if (text == NULL)
        return -1;
    int rc;
    if (PyUnicode_Check(text))
        rc = write_chars(w, text, 0);
    else
        rc = fallback(w, "a writer returned something other than str");
    Py_DECREF(text);
    return rc;
}

/* ----------------------------------------------------------------- numbers */

static int
write_long_long(Writer *w, long long x)
{
    char tmp[24];
    char *end = tmp + sizeof(tmp), *p = end;
    unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (x < 0)
        *--p = '-';
    return put(w, p, end - p);
}

static int
write_int(Writer *w, PyObject *v, int big)
{
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (!overflow) {
        if (x == -1 && PyErr_Occurred())
            return -1;
        if (write_long_long(w, x) < 0)
            return -1;
    }
    else {
        PyObject *digits = PyNumber_ToBase(v, 10);
        if (digits == NULL) {
            /* Past sys.get_int_max_str_digits(): the pure writer goes through Decimal. */
            if (!PyErr_ExceptionMatches(PyExc_ValueError))
                return -1;
            PyErr_Clear();
            digits = PyObject_CallOneArg(w->st->long_int_text, v);
        }
        if (write_text_result(w, digits) < 0)
            return -1;
    }
    return big ? put1(w, 'N') : 0;
}

/* orjson's bytes for a float or a list of floats are repr's text (commas aside)
 * unless they hold an exponent, a "0.0000" (repr switches to an exponent below
 * 1e-4 where orjson does not) or null/NaN/Infinity: then repr writes it. */
static int
orjson_matches_repr(const char *p, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = p[i], lower = (char)(c | 0x20);
        if (lower >= 'a' && lower <= 'z') /* e E (exponent), null, NaN, Infinity */
            return 0;
        /* "0.0000" starts where orjson writes a number below 1e-4 without an exponent. */
        if (c == '.' && i > 0 && p[i - 1] == '0' && n - i >= 5 && memcmp(p + i + 1, "0000", 4) == 0)
            return 0;
    }
    return 1;
}

static int
write_float(Writer *w, PyObject *v)
{
    double x = PyFloat_AS_DOUBLE(v);
    if (!isfinite(x)) {
        if (isnan(x))
            return PUT_LITERAL(w, "##NaN");
        return x > 0 ? PUT_LITERAL(w, "##Inf") : PUT_LITERAL(w, "##-Inf");
    }
    double a = fabs(x);
    if (w->st->orjson_dumps != Py_None && a >= 1e-4 && a < 1e16) {
        /* orjson writes the same shortest round-trip digits about 5x faster. */
        PyObject *bytes = PyObject_CallOneArg(w->st->orjson_dumps, v);
        if (bytes == NULL)
            return -1;
        int rc = 1;
        if (PyBytes_Check(bytes) &&
            orjson_matches_repr(PyBytes_AS_STRING(bytes), PyBytes_GET_SIZE(bytes)))
            rc = put(w, PyBytes_AS_STRING(bytes), PyBytes_GET_SIZE(bytes));
        Py_DECREF(bytes);
        if (rc <= 0)
            return rc;
    }
    /* What float.__repr__ writes. */
    char *text = PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (text == NULL)
        return -1;
    int rc = put(w, text, (Py_ssize_t)strlen(text));
    PyMem_Free(text);
    return rc;
}

/* A list of floats only, in one orjson call; 0 when repr must write it (or
 * it is not all floats), 1 when written, -1 on error. */
static int
write_float_list(Writer *w, PyObject *list)
{
    Py_ssize_t n = PyList_GET_SIZE(list);
    if (n < 2 || w->st->orjson_dumps == Py_None)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (!PyFloat_CheckExact(PyList_GET_ITEM(list, i)))
            return 0;
    PyObject *bytes = PyObject_CallOneArg(w->st->orjson_dumps, list);
    if (bytes == NULL)
        return -1;
    int rc = 0;
    if (PyBytes_Check(bytes)) {
        const char *p = PyBytes_AS_STRING(bytes);
        Py_ssize_t size = PyBytes_GET_SIZE(bytes);
        if (size >= 2 && p[0] == '[' && p[size - 1] == ']' && orjson_matches_repr(p, size)) {
            if (put(w, p, size) < 0) {
                rc = -1;
            }
            else {
                /* A JSON array of numbers is an EDN vector once commas become spaces. */
                char *o = w->buf + w->len - size;
                for (Py_ssize_t i = 0; i < size; i++)
                    if (o[i] == ',')
                        o[i] = ' ';
                rc = 1;
            }
        }
    }
    Py_DECREF(bytes);
    return rc;
}

/* ---------------------------------------------------------- #inst, #uuid */

static inline char *
digits(char *o, int value, int width)
{
    for (int k = width - 1; k >= 0; k--) {
        o[k] = (char)('0' + value % 10);
        value /= 10;
    }
    return o + width;
}

static int write_scalar_call(Writer *w, PyObject *v);

static int
write_datetime(Writer *w, PyObject *v)
{
    if (PyDateTime_DATE_GET_TZINFO(v) != PyDateTime_TimeZone_UTC)
        return write_scalar_call(w, v); /* converted to UTC, or refused, in Python */
    int year = PyDateTime_GET_YEAR(v), micro = PyDateTime_DATE_GET_MICROSECOND(v);
    if (RESERVE(w, 48) < 0)
        return -1;
    char *o = w->buf + w->len;
    memcpy(o, "#inst \"", 7);
    o = digits(o + 7, year, 4);
    *o++ = '-';
    o = digits(o, PyDateTime_GET_MONTH(v), 2);
    *o++ = '-';
    o = digits(o, PyDateTime_GET_DAY(v), 2);
    *o++ = 'T';
    o = digits(o, PyDateTime_DATE_GET_HOUR(v), 2);
    *o++ = ':';
    o = digits(o, PyDateTime_DATE_GET_MINUTE(v), 2);
    *o++ = ':';
    o = digits(o, PyDateTime_DATE_GET_SECOND(v), 2);
    *o++ = '.';
    /* Milliseconds, or microseconds when it has them (always six digits before 1000). */
    if (year >= 1000 && micro % 1000 == 0)
        o = digits(o, micro / 1000, 3);
    else
        o = digits(o, micro, 6);
    memcpy(o, "-00:00\"", 7);
    w->len = (o + 7) - w->buf;
    return 0;
}

static int
write_uuid(Writer *w, PyObject *v)
{
    PyObject *number = PyObject_GetAttr(v, w->st->s_int);
    if (number == NULL)
        return -1;
    unsigned long long hi = 0, lo = 0;
    int ok = 0;
    if (PyLong_CheckExact(number)) {
        lo = PyLong_AsUnsignedLongLongMask(number);
        PyObject *high = lo == (unsigned long long)-1 && PyErr_Occurred()
                             ? NULL
                             : PyNumber_Rshift(number, w->st->sixty_four);
        if (high != NULL) {
            hi = PyLong_AsUnsignedLongLong(high); /* raises for < 0 and >= 2**128 */
            ok = !(hi == (unsigned long long)-1 && PyErr_Occurred());
            Py_DECREF(high);
        }
        if (!ok) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
                Py_DECREF(number);
                return -1;
            }
            PyErr_Clear();
        }
    }
    Py_DECREF(number);
    if (!ok)
        return write_scalar_call(w, v); /* str(UUID) decides */
    if (RESERVE(w, 45) < 0)
        return -1;
    char *o = w->buf + w->len;
    memcpy(o, "#uuid \"", 7);
    o += 7;
    for (int k = 0; k < 32; k++) {
        if (k == 8 || k == 12 || k == 16 || k == 20)
            *o++ = '-';
        unsigned long long half = k < 16 ? hi : lo;
        *o++ = HEX[(half >> (4 * (15 - (k & 15)))) & 15];
    }
    *o++ = '"';
    w->len = o - w->buf;
    return 0;
}

/* -------------------------------------------------------- keywords, symbols */

/* Remember that keyword/symbol object `v` is written `bytes` (one slot per
 * address: a hit costs no attribute read and no dict lookup). The slot holds
 * strong references, so the address cannot be reused while it is there. */
static void
remember_named(State *st, int strict, PyObject *v, PyObject *bytes)
{
    NamedSlot *slot = &st->slots[strict][((uintptr_t)v >> 4) & (NAMED_SLOTS - 1)];
    if (slot->used) {
        /* A second chance (as a CLOCK cache gives): many distinct names, such
         * as a store's top-level keys, must not push out the frequent ones. */
        slot->used = 0;
        return;
    }
    PyObject *old_obj = slot->obj, *old_bytes = slot->bytes;
    slot->obj = Py_NewRef(v);
    slot->bytes = Py_NewRef(bytes);
    Py_XDECREF(old_obj);
    Py_XDECREF(old_bytes);
}

static int
write_named(Writer *w, PyObject *v, int symbol)
{
    State *st = w->st;
    NamedSlot *slot = &st->slots[w->strict][((uintptr_t)v >> 4) & (NAMED_SLOTS - 1)];
    if (slot->obj == v) {
        slot->used = 1;
        return put(w, PyBytes_AS_STRING(slot->bytes), PyBytes_GET_SIZE(slot->bytes));
    }
    PyObject *text = PyObject_GetAttr(v, st->s_text);
    if (text == NULL)
        return -1;
    PyObject *cache = st->named[symbol][w->strict];
    int cacheable = PyUnicode_CheckExact(text);
    if (cacheable) {
        PyObject *hit = PyDict_GetItemWithError(cache, text);
        if (hit != NULL) {
            Py_INCREF(hit);
            Py_DECREF(text);
            remember_named(st, w->strict, v, hit);
            int rc = put(w, PyBytes_AS_STRING(hit), PyBytes_GET_SIZE(hit));
            Py_DECREF(hit);
            return rc;
        }
        if (PyErr_Occurred()) {
            Py_DECREF(text);
            return -1;
        }
    }
    /* First sight of this text: named_text checks it (and raises EdnEncodeError). */
    PyObject *args[2] = {v, w->strict ? Py_True : Py_False};
    PyObject *named = PyObject_Vectorcall(st->named_text, args, 2, NULL);
    Py_ssize_t start = w->len, surrogates = w->surrogates;
    if (write_text_result(w, named) < 0) {
        Py_DECREF(text);
        return -1;
    }
    int rc = 0;
    if (cacheable && w->surrogates == surrogates) {
        PyObject *bytes = PyBytes_FromStringAndSize(w->buf + start, w->len - start);
        if (bytes == NULL) {
            rc = -1;
        }
        else {
            if (PyDict_GET_SIZE(cache) >= CACHE_LIMIT)
                PyDict_Clear(cache);
            rc = PyDict_SetItem(cache, text, bytes);
            if (rc == 0)
                remember_named(st, w->strict, v, bytes);
            Py_DECREF(bytes);
        }
    }
    Py_DECREF(text);
    return rc;
}

/* ------------------------------------------------------------- containers */

static int write_value(Writer *w, PyObject *v);

typedef struct {
    Py_ssize_t start, key_end, end; /* offsets while writing */
    const char *text;               /* the entry's text, once copied aside */
} Entry;

typedef struct {
    Entry *items;
    Py_ssize_t count, cap;
} Entries;

static int
entries_add(Entries *e, Py_ssize_t start, Py_ssize_t key_end, Py_ssize_t end)
{
    if (e->count == e->cap) {
        Py_ssize_t cap = e->cap ? e->cap * 2 : 16;
        Entry *items = PyMem_Realloc(e->items, (size_t)cap * sizeof(Entry));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        e->items = items;
        e->cap = cap;
    }
    Entry *x = &e->items[e->count++];
    x->start = start;
    x->key_end = key_end;
    x->end = end;
    return 0;
}

static int
compare_entries(const void *a, const void *b)
{
    const Entry *x = (const Entry *)a, *y = (const Entry *)b;
    Py_ssize_t lx = x->key_end - x->start, ly = y->key_end - y->start;
    int c = memcmp(x->text, y->text, (size_t)(lx < ly ? lx : ly));
    if (c)
        return c;
    return (lx > ly) - (lx < ly);
}

/* Rewrite the entries written contiguously from `region` in the order of their
 * key texts (UTF-8 byte order is code point order, Python's str order), with
 * `sep` between them. */
static int
sort_region(Writer *w, Entries *e, Py_ssize_t region, const char *sep, Py_ssize_t sep_len,
            int unique_keys, int surrogates_in_keys)
{
    if (surrogates_in_keys)
        /* The pure writer sorts before escaping them: \uXXXX would order differently. */
        return fallback(w, "lone surrogates in sorted texts");
    Py_ssize_t size = w->len - region;
    char *copy = PyMem_Malloc(size ? (size_t)size : 1);
    if (copy == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(copy, w->buf + region, (size_t)size);
    for (Py_ssize_t i = 0; i < e->count; i++)
        e->items[i].text = copy + (e->items[i].start - region);
    qsort(e->items, (size_t)e->count, sizeof(Entry), compare_entries);
    int rc = 0;
    if (unique_keys) {
        for (Py_ssize_t i = 1; i < e->count; i++) {
            if (compare_entries(&e->items[i - 1], &e->items[i]) == 0) {
                /* Distinct keys with one text: the pure writer's order decides. */
                rc = fallback(w, "map keys with equal texts");
                break;
            }
        }
    }
    if (rc == 0) {
        w->len = region;
        for (Py_ssize_t i = 0; i < e->count && rc == 0; i++) {
            Entry *x = &e->items[i];
            if (i && put(w, sep, sep_len) < 0)
                rc = -1;
            else
                rc = put(w, x->text, x->end - x->start);
        }
    }
    PyMem_Free(copy);
    return rc;
}

static int
write_dict(Writer *w, PyObject *d)
{
    if (put1(w, '{') < 0)
        return -1;
    Py_ssize_t size = PyDict_GET_SIZE(d), pos = 0;
    PyObject *key, *value;
    Entries entries = {NULL, 0, 0};
    Py_ssize_t region = w->len, key_surrogates = 0;
    int rc = 0;
    while (rc == 0 && PyDict_Next(d, &pos, &key, &value)) {
        Py_INCREF(key);
        Py_INCREF(value);
        Py_ssize_t start = w->len;
        if (!w->sort_keys && start != region)
            rc = PUT_LITERAL(w, ", ");
        Py_ssize_t key_start = w->len, surrogates = w->surrogates;
        if (rc == 0)
            rc = write_value(w, key);
        Py_ssize_t key_end = w->len;
        key_surrogates += w->surrogates - surrogates;
        if (rc == 0)
            rc = put1(w, ' ');
        if (rc == 0)
            rc = write_value(w, value);
        if (rc == 0 && w->sort_keys)
            rc = entries_add(&entries, key_start, key_end, w->len);
        Py_DECREF(key);
        Py_DECREF(value);
        if (rc == 0)
            maybe_yield(w);
        if (rc == 0 && PyDict_GET_SIZE(d) != size)
            rc = fallback(w, "a map changed size while it was written");
    }
    if (rc == 0 && w->sort_keys && entries.count > 1)
        rc = sort_region(w, &entries, region, ", ", 2, 1, key_surrogates != 0);
    PyMem_Free(entries.items);
    return rc < 0 ? -1 : put1(w, '}');
}

static int
write_sequence(Writer *w, PyObject *v, char open, char close)
{
    int list = PyList_Check(v);
    if (list && PyList_GET_SIZE(v) && PyFloat_CheckExact(PyList_GET_ITEM(v, 0))) {
        int done = write_float_list(w, v);
        if (done)
            return done < 0 ? -1 : 0;
    }
    if (put1(w, open) < 0)
        return -1;
    for (Py_ssize_t i = 0;; i++) {
        Py_ssize_t n = list ? PyList_GET_SIZE(v) : PyTuple_GET_SIZE(v);
        if (i >= n)
            break;
        PyObject *item = list ? PyList_GET_ITEM(v, i) : PyTuple_GET_ITEM(v, i);
        Py_INCREF(item);
        int rc = (i && put1(w, ' ') < 0) ? -1 : write_value(w, item);
        Py_DECREF(item);
        if (rc < 0)
            return -1;
        maybe_yield(w);
    }
    return put1(w, close);
}

static int
write_set(Writer *w, PyObject *v)
{
    if (PUT_LITERAL(w, "#{") < 0)
        return -1;
    PyObject *it = PyObject_GetIter(v);
    if (it == NULL)
        return -1;
    Entries entries = {NULL, 0, 0};
    Py_ssize_t region = w->len, surrogates = w->surrogates;
    int rc = 0;
    PyObject *item;
    while (rc == 0 && (item = PyIter_Next(it)) != NULL) {
        if (!w->sort_keys && w->len != region)
            rc = put1(w, ' ');
        Py_ssize_t start = w->len;
        if (rc == 0)
            rc = write_value(w, item);
        if (rc == 0 && w->sort_keys)
            rc = entries_add(&entries, start, w->len, w->len);
        Py_DECREF(item);
        if (rc == 0)
            maybe_yield(w);
    }
    Py_DECREF(it);
    if (rc == 0 && PyErr_Occurred())
        rc = -1;
    if (rc == 0 && w->sort_keys && entries.count > 1)
        rc = sort_region(w, &entries, region, " ", 1, 0, w->surrogates != surrogates);
    PyMem_Free(entries.items);
    return rc < 0 ? -1 : put1(w, '}');
}

static int
write_tagged(Writer *w, PyObject *v)
{
    State *st = w->st;
    PyObject *tag = PyObject_GetAttr(v, st->s_tag);
    if (tag == NULL)
        return -1;
    PyObject *inner = PyObject_GetAttr(v, st->s_value);
    if (inner == NULL) {
        Py_DECREF(tag);
        return -1;
    }
    int rc = 0;
    if (!PyUnicode_CheckExact(tag)) {
        rc = fallback(w, "a tag that is not a str");
        goto done;
    }
    int known = PySet_Contains(st->tags, tag);
    if (known < 0) {
        rc = -1;
        goto done;
    }
    if (!known) {
        PyObject *match = PyObject_CallOneArg(st->tag_match, tag);
        if (match == NULL) {
            rc = -1;
            goto done;
        }
        int valid = match != Py_None;
        Py_DECREF(match);
        if (!valid) {
            rc = fallback(w, "an invalid tag"); /* the pure writer raises its EdnEncodeError */
            goto done;
        }
        if (PySet_GET_SIZE(st->tags) >= CACHE_LIMIT && PySet_Clear(st->tags) < 0) {
            rc = -1;
            goto done;
        }
        if (PySet_Add(st->tags, tag) < 0) {
            rc = -1;
            goto done;
        }
    }
    /* A collection follows its tag directly (#my.Rec{...}); anything else after a space. */
    PyObject *kind = (PyObject *)Py_TYPE(inner);
    int glued = kind == (PyObject *)&PyDict_Type || kind == (PyObject *)&PyList_Type ||
                kind == (PyObject *)&PyTuple_Type || kind == st->vector_type ||
                kind == st->frozen_map_type || kind == st->edn_map_type;
    if (put1(w, '#') < 0 || write_chars(w, tag, 0) < 0 || (!glued && put1(w, ' ') < 0))
        rc = -1;
    else
        rc = write_value(w, inner);
done:
    Py_DECREF(tag);
    Py_DECREF(inner);
    return rc;
}

static int
write_frozen_map(Writer *w, PyObject *v)
{
    PyObject *data = PyObject_GetAttr(v, w->st->s_data);
    if (data == NULL)
        return -1;
    int rc = PyDict_CheckExact(data) ? write_dict(w, data)
                                     : fallback(w, "a FrozenMap whose data is not a dict");
    Py_DECREF(data);
    return rc;
}

/* ------------------------------------------------------------------ others */

static int
write_scalar_call(Writer *w, PyObject *v)
{
    PyObject *scalar = PyDict_GetItemWithError(w->st->scalars, (PyObject *)Py_TYPE(v));
    if (scalar == NULL) {
        if (!PyErr_Occurred())
            fallback(w, "no scalar writer for this type");
        return -1;
    }
    return write_text_result(w, PyObject_CallOneArg(scalar, v));
}

/* The exact types the pure encoder writes without coercing first. */
static int
is_known(State *st, PyObject *kind)
{
    PyTypeObject *t = (PyTypeObject *)kind;
    if (t == &PyUnicode_Type || t == &PyLong_Type || t == &PyFloat_Type || t == &PyBool_Type ||
        t == Py_TYPE(Py_None) || t == &PyDict_Type || t == &PyList_Type || t == &PyTuple_Type ||
        t == &PySet_Type || t == &PyFrozenSet_Type || kind == st->keyword_type ||
        kind == st->symbol_type || kind == st->bigint_type || kind == st->vector_type ||
        kind == st->frozen_map_type || kind == st->tagged_type || kind == st->raw_type)
        return 1;
    return PyDict_Contains(st->scalars, kind);
}

/* A subclass, or a value for `default`: coerce(value, attempt) until the result
 * is of a type written as it is (the pure encoder's loop, raising as it does). */
static int
write_coerced(Writer *w, PyObject *v)
{
    Py_INCREF(v);
    for (long attempt = 0;; attempt++) {
        PyObject *number = PyLong_FromLong(attempt);
        if (number == NULL) {
            Py_DECREF(v);
            return -1;
        }
        PyObject *args[2] = {v, number};
        PyObject *next = PyObject_Vectorcall(w->coerce, args, 2, NULL);
        Py_DECREF(number);
        Py_DECREF(v);
        if (next == NULL)
            return -1;
        int known = is_known(w->st, (PyObject *)Py_TYPE(next));
        if (known < 0) {
            Py_DECREF(next);
            return -1;
        }
        if (known) {
            int rc = write_value(w, next);
            Py_DECREF(next);
            return rc;
        }
        v = next;
    }
}

static int
write_raw(Writer *w, PyObject *v)
{
    PyObject *text = PyObject_GetAttr(v, w->st->s_text);
    if (text != NULL && !PyUnicode_Check(text)) {
        Py_DECREF(text);
        return fallback(w, "a Raw text that is not a str");
    }
    return write_text_result(w, text);
}

static int
write_container(Writer *w, PyObject *v, PyTypeObject *t)
{
    State *st = w->st;
    PyObject *kind = (PyObject *)t;
    if (w->depth >= MAX_DEPTH)
        return fallback(w, "nested deeper than the C writer goes");
    w->depth++;
    int rc;
    if (t == &PyDict_Type)
        rc = write_dict(w, v);
    else if (t == &PyList_Type || kind == st->vector_type)
        rc = write_sequence(w, v, '[', ']');
    else if (t == &PyTuple_Type)
        rc = write_sequence(w, v, '(', ')');
    else if (t == &PyFrozenSet_Type || t == &PySet_Type)
        rc = write_set(w, v);
    else if (kind == st->frozen_map_type)
        rc = write_frozen_map(w, v);
    else
        rc = write_tagged(w, v);
    w->depth--;
    return rc;
}

static int
write_value(Writer *w, PyObject *v)
{
    State *st = w->st;
    PyTypeObject *t = Py_TYPE(v);
    PyObject *kind = (PyObject *)t;
    if (t == &PyUnicode_Type)
        return write_str(w, v);
    if (kind == st->keyword_type)
        return write_named(w, v, 0);
    if (t == &PyLong_Type)
        return write_int(w, v, 0);
    if (t == &PyFloat_Type)
        return write_float(w, v);
    if (v == Py_None)
        return PUT_LITERAL(w, "nil");
    if (t == &PyBool_Type)
        return v == Py_True ? PUT_LITERAL(w, "true") : PUT_LITERAL(w, "false");
    if (t == &PyDict_Type || t == &PyList_Type || t == &PyTuple_Type || t == &PyFrozenSet_Type ||
        t == &PySet_Type || kind == st->vector_type || kind == st->frozen_map_type ||
        kind == st->tagged_type)
        return write_container(w, v, t);
    if (t == PyDateTimeAPI->DateTimeType)
        return write_datetime(w, v);
    if (kind == st->uuid_type)
        return write_uuid(w, v);
    if (kind == st->symbol_type)
        return write_named(w, v, 1);
    if (kind == st->bigint_type)
        return write_int(w, v, 1);
    if (kind == st->raw_type)
        return write_raw(w, v);
    PyObject *scalar = PyDict_GetItemWithError(st->scalars, kind);
    if (scalar != NULL)
        return write_text_result(w, PyObject_CallOneArg(scalar, v));
    if (PyErr_Occurred())
        return -1;
    return write_coerced(w, v);
}

/* ------------------------------------------------------------------ module */

PyDoc_STRVAR(encode_doc,
"encode(value, sort_keys, strict, coerce, /) -> str\n\n"
"The EDN text of value, exactly as the pure-Python encoder writes it.\n"
"coerce(value, attempt) maps a value of any other type (Writer.coerce).\n"
"Raises Fallback where the pure writer must write the whole text.");

static PyObject *
encode(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "encode() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    State *st = get_state(module);
    if (!st->configured) {
        PyErr_SetString(PyExc_RuntimeError, "_cwriter.configure() was not called");
        return NULL;
    }
    int sort_keys = PyObject_IsTrue(args[1]);
    int strict = PyObject_IsTrue(args[2]);
    if (sort_keys < 0 || strict < 0)
        return NULL;
    Writer w = {st, NULL, 0, 0, sort_keys, strict, args[3], 0, 0, GIL_TURNS_INIT};
    PyObject *result = NULL;
    if (write_value(&w, args[0]) == 0)
        result = PyUnicode_DecodeUTF8(w.buf ? w.buf : "", w.len, "strict");
    PyMem_Free(w.buf);
    return result;
}

PyDoc_STRVAR(configure_doc,
"configure(*, keyword, symbol, bigint, vector, frozen_map, tagged, raw, uuid,\n"
"          scalars, tag_match, named_text, long_int_text, orjson_dumps) -> None\n\n"
"Give the writer the codec's types and helper functions (once, before encode).");

static void
clear_slots(State *st)
{
    for (int k = 0; k < 2; k++) {
        if (st->slots[k] == NULL)
            continue;
        for (int i = 0; i < NAMED_SLOTS; i++) {
            Py_CLEAR(st->slots[k][i].obj);
            Py_CLEAR(st->slots[k][i].bytes);
            st->slots[k][i].used = 0;
        }
    }
}

static void
state_clear_refs(State *st)
{
    Py_CLEAR(st->keyword_type);
    Py_CLEAR(st->symbol_type);
    Py_CLEAR(st->bigint_type);
    Py_CLEAR(st->vector_type);
    Py_CLEAR(st->frozen_map_type);
    Py_CLEAR(st->edn_map_type);
    Py_CLEAR(st->tagged_type);
    Py_CLEAR(st->raw_type);
    Py_CLEAR(st->uuid_type);
    Py_CLEAR(st->scalars);
    Py_CLEAR(st->tag_match);
    Py_CLEAR(st->named_text);
    Py_CLEAR(st->long_int_text);
    Py_CLEAR(st->orjson_dumps);
}

static PyObject *
configure(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"keyword", "symbol", "bigint", "vector", "frozen_map", "tagged",
                            "raw", "uuid", "scalars", "tag_match", "named_text",
                            "long_int_text", "orjson_dumps", "edn_map", NULL};
    PyObject *o[14];
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$O!O!O!O!O!O!O!O!O!OOOOO!:configure", names,
                                     &PyType_Type, &o[0], &PyType_Type, &o[1], &PyType_Type,
                                     &o[2], &PyType_Type, &o[3], &PyType_Type, &o[4],
                                     &PyType_Type, &o[5], &PyType_Type, &o[6], &PyType_Type,
                                     &o[7], &PyDict_Type, &o[8], &o[9], &o[10], &o[11], &o[12],
                                     &PyType_Type, &o[13]))
        return NULL;
    State *st = get_state(module);
    state_clear_refs(st);
    PyObject **slots[14] = {&st->keyword_type, &st->symbol_type, &st->bigint_type,
                            &st->vector_type, &st->frozen_map_type, &st->tagged_type,
                            &st->raw_type, &st->uuid_type, &st->scalars, &st->tag_match,
                            &st->named_text, &st->long_int_text, &st->orjson_dumps,
                            &st->edn_map_type};
    for (int i = 0; i < 14; i++)
        *slots[i] = Py_NewRef(o[i]);
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 2; k++)
            PyDict_Clear(st->named[s][k]);
    clear_slots(st);
    if (PySet_Clear(st->tags) < 0)
        return NULL;
    st->configured = 1;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"encode", (PyCFunction)(void (*)(void))encode, METH_FASTCALL, encode_doc},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     configure_doc},
    {NULL, NULL, 0, NULL},
};

static int
module_traverse(PyObject *module, visitproc visit, void *arg)
{
    State *st = get_state(module);
    Py_VISIT(st->keyword_type);
    Py_VISIT(st->symbol_type);
    Py_VISIT(st->bigint_type);
    Py_VISIT(st->vector_type);
    Py_VISIT(st->frozen_map_type);
    Py_VISIT(st->edn_map_type);
    Py_VISIT(st->tagged_type);
    Py_VISIT(st->raw_type);
    Py_VISIT(st->uuid_type);
    Py_VISIT(st->scalars);
    Py_VISIT(st->tag_match);
    Py_VISIT(st->named_text);
    Py_VISIT(st->long_int_text);
    Py_VISIT(st->orjson_dumps);
    Py_VISIT(st->fallback);
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 2; k++)
            Py_VISIT(st->named[s][k]);
    Py_VISIT(st->tags);
    for (int k = 0; k < 2; k++) {
        if (st->slots[k] == NULL)
            continue;
        for (int i = 0; i < NAMED_SLOTS; i++) {
            Py_VISIT(st->slots[k][i].obj);
            Py_VISIT(st->slots[k][i].bytes);
        }
    }
    return 0;
}

static int
module_clear(PyObject *module)
{
    State *st = get_state(module);
    state_clear_refs(st);
    st->configured = 0;
    Py_CLEAR(st->fallback);
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 2; k++)
            Py_CLEAR(st->named[s][k]);
    Py_CLEAR(st->tags);
    Py_CLEAR(st->s_text);
    Py_CLEAR(st->s_tag);
    Py_CLEAR(st->s_value);
    Py_CLEAR(st->s_int);
    Py_CLEAR(st->s_data);
    Py_CLEAR(st->sixty_four);
    clear_slots(st);
    return 0;
}

static void
module_free(void *module)
{
    module_clear((PyObject *)module);
    State *st = get_state((PyObject *)module);
    for (int k = 0; k < 2; k++) {
        PyMem_Free(st->slots[k]);
        st->slots[k] = NULL;
    }
}

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "garrison.edn._cwriter",
    "The EDN writer's C accelerator (see garrison.edn._encoder).",
    sizeof(State),
    methods,
    NULL,
    module_traverse,
    module_clear,
    module_free,
};

PyMODINIT_FUNC
PyInit__cwriter(void)
{
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL)
        return NULL;
    init_escapes();
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    State *st = get_state(module);
    st->fallback = PyErr_NewExceptionWithDoc(
        "garrison.edn._cwriter.Fallback",
        "The C writer leaves this value to the pure-Python writer.", NULL, NULL);
    if (st->fallback == NULL)
        goto error;
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 2; k++)
            if ((st->named[s][k] = PyDict_New()) == NULL)
                goto error;
    if ((st->tags = PySet_New(NULL)) == NULL)
        goto error;
    for (int k = 0; k < 2; k++) {
        st->slots[k] = PyMem_Calloc(NAMED_SLOTS, sizeof(NamedSlot));
        if (st->slots[k] == NULL) {
            PyErr_NoMemory();
            goto error;
        }
    }
    if ((st->s_text = PyUnicode_InternFromString("text")) == NULL ||
        (st->s_tag = PyUnicode_InternFromString("tag")) == NULL ||
        (st->s_value = PyUnicode_InternFromString("value")) == NULL ||
        (st->s_int = PyUnicode_InternFromString("int")) == NULL ||
        (st->s_data = PyUnicode_InternFromString("_data")) == NULL ||
        (st->sixty_four = PyLong_FromLong(64)) == NULL)
        goto error;
    if (PyModule_AddObjectRef(module, "Fallback", st->fallback) < 0)
        goto error;
    if (PyModule_AddIntConstant(module, "MAX_DEPTH", MAX_DEPTH) < 0)
        goto error;
    return module;
error:
    Py_DECREF(module);
    return NULL;
}
