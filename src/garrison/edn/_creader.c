/* garrison.edn._creader: the EDN reader's C accelerator.
 *
 * It reads the common kinds itself (nil, booleans, ints of up to 18 digits,
 * floats, strings, keywords, symbols, vectors, lists, maps, sets, #inst,
 * #uuid, #_ discards) straight from the str's internal buffer, and calls the
 * pure reader's own helpers (garrison.edn._atoms, ._reader) for the
 * rare atoms (chars, other numbers, string escapes it does not decode itself,
 * tags' special cases, namespaced maps, unhashable keys). It never formats an
 * error: on any syntax error, helper error, or nesting deeper than
 * MAX_DEPTH it raises Unsupported, and garrison.edn._api re-reads the
 * text with the pure reader, which returns the same value or raises the
 * precise EdnSyntaxError. So the pure reader stays the one definition of the
 * language, and this file only has to agree with it where it answers.
 *
 * Public C API only (CPython 3.11 to 3.13); the GIL is held throughout.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "_gil_turns.h"

#ifndef Py_T_PYSSIZET /* before 3.12, the member types live in structmember.h */
#include <structmember.h>
#define Py_T_PYSSIZET T_PYSSIZET
#define Py_READONLY READONLY
#endif

/* Deeper nesting is left to the pure reader, which keeps an explicit stack:
 * this reader recurses (about 220 bytes of C stack per level with gcc -O2, so
 * ~220 kB at the limit: within any thread's stack, even macOS's 512 kB). */
#define MAX_DEPTH 1000

/* The pure reader's collection kinds (garrison.edn._reader). */
#define KIND_MAP 1
#define KIND_VEC 2
#define KIND_LIST 3
#define KIND_SET 4
#define KIND_NSMAP 5

/* ------------------------------------------------------------------ */
/* Objects borrowed from Python modules, looked up on first use.      */

static PyObject *Unsupported;      /* the fallback signal */
static PyObject *Keyword_type;     /* _types.Keyword */
static PyObject *Symbol_type;      /* _types.Symbol */
static PyObject *Tagged_type;      /* _types.Tagged */
static PyObject *build_fn;         /* _reader._build */
static PyObject *symbolic_values;  /* _reader._SYMBOLIC_VALUES (one NaN object) */
static PyObject *unescape_fn;      /* _atoms.unescape */
static PyObject *read_char_fn;     /* _atoms.read_char */
static PyObject *read_number_fn;   /* _atoms.read_number */
static PyObject *apply_tag_fn;     /* _atoms.apply_tag */
static PyObject *check_named_fn;   /* _atoms.check_named */
static PyObject *uuid_type;        /* uuid.UUID */
static PyObject *fromisoformat_fn; /* datetime.datetime.fromisoformat */
static PyObject *str_inst, *str_empty;
static int helpers_ready = 0;

/* Keywords, symbols and canonical UUIDs are made here without running their
 * Python __init__ (a third of the time of a file with many distinct keys),
 * with the very attributes __init__ would set. Only when the classes have the
 * exact layout this code knows (checked once); otherwise the class is called. */
static int layouts_checked = 0;
static int named_fast = 0;
static PyObject *keyword_salt, *symbol_salt; /* Keyword._salt, Symbol._salt */
static int uuid_fast = 0;
static PyObject *safe_uuid_unknown; /* uuid.SafeUUID.unknown */
static PyObject *str_text, *str_namespace, *str_name, *str_hash, *str_int, *str_is_safe;

static PyObject *
attr_of(const char *module_name, const char *name)
{
    PyObject *module = PyImport_ImportModule(module_name);
    if (module == NULL) {
        return NULL;
    }
    PyObject *value = PyObject_GetAttrString(module, name);
    Py_DECREF(module);
    return value;
}

/* 1 when cls.__slots__ == the given names, 0 when not, -1 on error. */
static int
slots_are(PyObject *cls, const char *const *names, Py_ssize_t count)
{
    PyObject *own = PyObject_GetAttrString(cls, "__dict__");
    if (own == NULL) {
        return -1;
    }
    PyObject *slots = PyMapping_GetItemString(own, "__slots__");
    int has_new = PyMapping_HasKeyString(own, "__new__");
    Py_DECREF(own);
    if (slots == NULL) {
        PyErr_Clear();
        return 0;
    }
    int same = !has_new && PyTuple_Check(slots) && PyTuple_GET_SIZE(slots) == count;
    for (Py_ssize_t i = 0; same && i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(slots, i);
        same = PyUnicode_Check(item) && PyUnicode_CompareWithASCIIString(item, names[i]) == 0;
    }
    Py_DECREF(slots);
    return same;
}

/* 1 when cls.attr is base.attr, 0 when not, -1 on error. */
static int
same_attr(PyObject *cls, PyObject *base, const char *attr)
{
    PyObject *a = PyObject_GetAttrString(cls, attr);
    PyObject *b = a == NULL ? NULL : PyObject_GetAttrString(base, attr);
    int same = b == NULL ? -1 : a == b;
    Py_XDECREF(a);
    Py_XDECREF(b);
    return same;
}

/* Decide whether the fast constructors may be used (see named_fast). */
static int
check_layouts(void)
{
    static const char *const named_slots[] = {"_hash", "name", "namespace", "text"};
    static const char *const uuid_slots[] = {"int", "is_safe", "__weakref__"};
    PyObject *named_base = attr_of("garrison.edn._types", "_Named");
    if (named_base == NULL) {
        return -1;
    }
    int ok = slots_are(named_base, named_slots, 4);
    if (ok == 1) {
        ok = slots_are(Keyword_type, NULL, 0);
    }
    if (ok == 1) {
        ok = slots_are(Symbol_type, NULL, 0);
    }
    if (ok == 1) {
        ok = same_attr(Keyword_type, named_base, "__init__");
    }
    if (ok == 1) {
        ok = same_attr(Symbol_type, named_base, "__init__");
    }
    Py_DECREF(named_base);
    if (ok < 0) {
        return -1;
    }
    if (ok == 1) {
        keyword_salt = PyObject_GetAttrString(Keyword_type, "_salt");
        symbol_salt = keyword_salt == NULL ? NULL : PyObject_GetAttrString(Symbol_type, "_salt");
        if (symbol_salt == NULL) {
            Py_CLEAR(keyword_salt);
            return -1;
        }
        named_fast = 1;
    }
    ok = slots_are(uuid_type, uuid_slots, 3);
    if (ok < 0) {
        return -1;
    }
    if (ok == 1) {
        PyObject *safe = attr_of("uuid", "SafeUUID");
        if (safe == NULL) {
            return -1;
        }
        safe_uuid_unknown = PyObject_GetAttrString(safe, "unknown");
        Py_DECREF(safe);
        if (safe_uuid_unknown == NULL) {
            return -1;
        }
        uuid_fast = 1;
    }
    return 0;
}

static int verify_constructors(void);

static int
load_helpers(void)
{
    if (helpers_ready) {
        return 0;
    }
    /* Imports may release the GIL, so another thread can finish first:
     * each slot is filled once and the first value kept. */
    struct {
        PyObject **slot;
        const char *module;
        const char *name;
    } wanted[] = {
        {&Keyword_type, "garrison.edn._types", "Keyword"},
        {&Symbol_type, "garrison.edn._types", "Symbol"},
        {&Tagged_type, "garrison.edn._types", "Tagged"},
        {&build_fn, "garrison.edn._reader", "_build"},
        {&symbolic_values, "garrison.edn._reader", "_SYMBOLIC_VALUES"},
        {&unescape_fn, "garrison.edn._atoms", "unescape"},
        {&read_char_fn, "garrison.edn._atoms", "read_char"},
        {&read_number_fn, "garrison.edn._atoms", "read_number"},
        {&apply_tag_fn, "garrison.edn._atoms", "apply_tag"},
        {&check_named_fn, "garrison.edn._atoms", "check_named"},
        {&uuid_type, "uuid", "UUID"},
    };
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        if (*wanted[i].slot != NULL) {
            continue;
        }
        PyObject *value = attr_of(wanted[i].module, wanted[i].name);
        if (value == NULL) {
            return -1;
        }
        if (*wanted[i].slot == NULL) {
            *wanted[i].slot = value;
        }
        else {
            Py_DECREF(value);
        }
    }
    if (!PyDict_Check(symbolic_values)) {
        PyErr_SetString(PyExc_TypeError, "_reader._SYMBOLIC_VALUES is not a dict");
        return -1;
    }
    if (fromisoformat_fn == NULL) {
        PyObject *datetime_type = attr_of("datetime", "datetime");
        if (datetime_type == NULL) {
            return -1;
        }
        PyObject *value = PyObject_GetAttrString(datetime_type, "fromisoformat");
        Py_DECREF(datetime_type);
        if (value == NULL) {
            return -1;
        }
        if (fromisoformat_fn == NULL) {
            fromisoformat_fn = value;
        }
        else {
            Py_DECREF(value);
        }
    }
    if (!layouts_checked) {
        if (check_layouts() < 0 || verify_constructors() < 0) {
            return -1;
        }
        layouts_checked = 1;
    }
    helpers_ready = 1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Names: one Keyword (or Symbol) per distinct text, per reader.       */

typedef struct {
    Py_hash_t hash;
    Py_ssize_t start; /* where the name first occurs in the parser's text */
    Py_ssize_t length;
    PyObject *value; /* the Keyword or Symbol (owned) */
} NameEntry;

typedef struct {
    NameEntry *entries;
    Py_ssize_t mask; /* capacity - 1, capacity a power of two */
    Py_ssize_t used;
} NameTable;

static void
names_clear(NameTable *table)
{
    if (table->entries == NULL) {
        return;
    }
    for (Py_ssize_t i = 0; i <= table->mask; i++) {
        Py_XDECREF(table->entries[i].value);
    }
    PyMem_Free(table->entries);
    table->entries = NULL;
    table->mask = -1;
    table->used = 0;
}

static int
names_grow(NameTable *table)
{
    Py_ssize_t capacity = table->entries == NULL ? 256 : (table->mask + 1) * 2;
    NameEntry *fresh = PyMem_Calloc((size_t)capacity, sizeof(NameEntry));
    if (fresh == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t mask = capacity - 1;
    if (table->entries != NULL) {
        for (Py_ssize_t i = 0; i <= table->mask; i++) {
            NameEntry *old = &table->entries[i];
            if (old->value == NULL) {
                continue;
            }
            Py_ssize_t j = (Py_ssize_t)((size_t)old->hash & (size_t)mask);
            while (fresh[j].value != NULL) {
                j = (j + 1) & mask;
            }
            fresh[j] = *old;
        }
        PyMem_Free(table->entries);
    }
    table->entries = fresh;
    table->mask = mask;
    return 0;
}

/* ------------------------------------------------------------------ */
/* The parser.                                                         */

typedef struct {
    PyObject *text;
    const void *data;
    int kind;
    Py_ssize_t len;
    Py_ssize_t pos;
    int strict;
    int depth;
    Py_ssize_t max_digits; /* read_number's max_digits; -1: its default */
    PyObject **stack; /* items of the open collections (owned references) */
    Py_ssize_t sp;
    Py_ssize_t cap;
    NameTable keywords;
    NameTable symbols;
    GilTurns turns; /* other threads' turns during a large text */
} Parser;

/* Other threads get their turns during a large loads (_gil_turns.h). Safe:
 * the parser's state is its own, and the text is an immutable str it holds a
 * reference to. */
static inline void
maybe_yield(Parser *p)
{
    gil_turns_maybe(&p->turns, p->pos);
}

#define CH(p, i) PyUnicode_READ((p)->kind, (p)->data, (i))

/* ASCII classes: 1 = EDN whitespace (Python's \s, as the pure reader's
 * regular expression uses it), 2 = comma, 4 = a delimiter that ends a token. */
static unsigned char ascii_class[128];

static void
init_classes(void)
{
    const char *spaces = "\t\n\v\f\r\x1c\x1d\x1e\x1f ";
    for (const char *c = spaces; *c; c++) {
        ascii_class[(unsigned char)*c] = 1 | 4;
    }
    ascii_class[','] = 2 | 4;
    for (const char *c = "()[]{}\"\\;"; *c; c++) {
        ascii_class[(unsigned char)*c] = 4;
    }
}

static inline int
is_space(Py_UCS4 c)
{
    return c < 128 ? (ascii_class[c] & 1) : Py_UNICODE_ISSPACE(c);
}

/* A character that continues a token (the pure reader's _TOKEN_CHAR). */
static inline int
is_token_char(Py_UCS4 c)
{
    return c < 128 ? !(ascii_class[c] & 4) : !Py_UNICODE_ISSPACE(c);
}

/* The scanning loops, once per storage kind of the str (1, 2 or 4 bytes per
 * character), so that the inner loops index a typed array. */
#define DEFINE_SCANNERS(SUFFIX, T)                                                      \
    static Py_ssize_t token_end_##SUFFIX(const T *s, Py_ssize_t i, Py_ssize_t len)     \
    {                                                                                  \
        while (i < len && is_token_char(s[i])) {                                       \
            i++;                                                                       \
        }                                                                              \
        return i;                                                                      \
    }                                                                                  \
    static Py_ssize_t space_end_##SUFFIX(const T *s, Py_ssize_t i, Py_ssize_t len)     \
    {                                                                                  \
        while (i < len) {                                                              \
            Py_UCS4 c = s[i];                                                          \
            if (c < 128 ? (ascii_class[c] & 3) : Py_UNICODE_ISSPACE(c)) {              \
                i++;                                                                   \
            }                                                                          \
            else if (c == ';') {                                                       \
                while (i < len && s[i] != '\n') {                                      \
                    i++;                                                               \
                }                                                                      \
            }                                                                          \
            else {                                                                     \
                break;                                                                 \
            }                                                                          \
        }                                                                              \
        return i;                                                                      \
    }                                                                                  \
    static Py_ssize_t string_end_##SUFFIX(const T *s, Py_ssize_t i, Py_ssize_t len,    \
                                          int *escaped)                                \
    {                                                                                  \
        while (i < len) {                                                              \
            T c = s[i];                                                                \
            if (c == '"') {                                                            \
                return i;                                                              \
            }                                                                          \
            if (c == '\\') {                                                           \
                *escaped = 1;                                                          \
                i += 2;                                                                \
            }                                                                          \
            else {                                                                     \
                i++;                                                                   \
            }                                                                          \
        }                                                                              \
        return -1;                                                                     \
    }

DEFINE_SCANNERS(1, Py_UCS1)
DEFINE_SCANNERS(2, Py_UCS2)
DEFINE_SCANNERS(4, Py_UCS4)

/* The end of the token that starts at i. */
static inline Py_ssize_t
token_end(Parser *p, Py_ssize_t i)
{
    switch (p->kind) {
    case PyUnicode_1BYTE_KIND:
        return token_end_1(p->data, i, p->len);
    case PyUnicode_2BYTE_KIND:
        return token_end_2(p->data, i, p->len);
    default:
        return token_end_4(p->data, i, p->len);
    }
}

/* Skip whitespace, commas and ; comments. */
static inline void
skip_space(Parser *p)
{
    switch (p->kind) {
    case PyUnicode_1BYTE_KIND:
        p->pos = space_end_1(p->data, p->pos, p->len);
        break;
    case PyUnicode_2BYTE_KIND:
        p->pos = space_end_2(p->data, p->pos, p->len);
        break;
    default:
        p->pos = space_end_4(p->data, p->pos, p->len);
    }
}

/* The closing quote of the string whose body starts at i; -1 if none. */
static inline Py_ssize_t
string_end(Parser *p, Py_ssize_t i, int *escaped)
{
    switch (p->kind) {
    case PyUnicode_1BYTE_KIND:
        return string_end_1(p->data, i, p->len, escaped);
    case PyUnicode_2BYTE_KIND:
        return string_end_2(p->data, i, p->len, escaped);
    default:
        return string_end_4(p->data, i, p->len, escaped);
    }
}

static PyObject *read_form(Parser *p);

/* Skip whitespace, comments and #_ discarded forms. -1: failed (or fall back). */
static int
skip_ignored(Parser *p)
{
    for (;;) {
        skip_space(p);
        if (p->pos + 1 < p->len && CH(p, p->pos) == '#' && CH(p, p->pos + 1) == '_') {
            p->pos += 2;
            PyObject *discarded = read_form(p);
            if (discarded == NULL) {
                return -1;
            }
            Py_DECREF(discarded);
            continue;
        }
        return 0;
    }
}

/* A helper raised: an ordinary exception means "let the pure reader decide"
 * (it raises the precise error); anything else (KeyboardInterrupt...) goes on. */
static PyObject *
helper_failed(void)
{
    if (PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_Clear();
    }
    return NULL;
}

static int
push(Parser *p, PyObject *value)
{
    if (p->sp == p->cap) {
        Py_ssize_t cap = p->cap ? p->cap * 2 : 256;
        PyObject **grown = PyMem_Realloc(p->stack, (size_t)cap * sizeof(PyObject *));
        if (grown == NULL) {
            Py_DECREF(value);
            PyErr_NoMemory();
            return -1;
        }
        p->stack = grown;
        p->cap = cap;
    }
    p->stack[p->sp++] = value;
    return 0;
}

/* A hash of the raw storage of text[start:end] (names are short: a
 * multiply-and-xorshift over 8-byte words spreads them well enough). */
static uint64_t
hash_span(Parser *p, Py_ssize_t start, Py_ssize_t end)
{
    const unsigned char *bytes = (const unsigned char *)p->data + start * p->kind;
    size_t n = (size_t)(end - start) * (size_t)p->kind;
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        h = (h ^ word) * 0xFF51AFD7ED558CCDULL;
        h ^= h >> 32;
        bytes += 8;
        n -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, bytes, n);
    h = (h ^ tail) * 0xC4CEB9FE1A85EC53ULL;
    return h ^ (h >> 29);
}

static inline int hex_value(Py_UCS4 c);

/* A Keyword or Symbol as _Named.__init__ makes it (see named_fast). */
static PyObject *
make_named(PyObject *type, PyObject *salt, PyObject *text)
{
    if (!named_fast) {
        return PyObject_CallOneArg(type, text);
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    Py_ssize_t slash = PyUnicode_FindChar(text, '/', 0, n, 1);
    if (slash == -2) {
        return NULL;
    }
    PyObject *namespace, *name;
    if (slash <= 0) { /* also "/" itself */
        namespace = Py_None;
        Py_INCREF(namespace);
        name = text;
        Py_INCREF(name);
    }
    else {
        namespace = PyUnicode_Substring(text, 0, slash);
        name = namespace == NULL ? NULL : PyUnicode_Substring(text, slash + 1, n);
    }
    PyObject *pair = name == NULL ? NULL : PyTuple_Pack(2, salt, text);
    Py_hash_t h = pair == NULL ? -1 : PyObject_Hash(pair);
    PyObject *hash = h == -1 ? NULL : PyLong_FromSsize_t(h);
    PyTypeObject *tp = (PyTypeObject *)type;
    PyObject *obj = hash == NULL ? NULL : tp->tp_alloc(tp, 0);
    /* object.__setattr__, as __init__ does: the class's own refuses. */
    if (obj != NULL
        && (PyObject_GenericSetAttr(obj, str_text, text) < 0
            || PyObject_GenericSetAttr(obj, str_namespace, namespace) < 0
            || PyObject_GenericSetAttr(obj, str_name, name) < 0
            || PyObject_GenericSetAttr(obj, str_hash, hash) < 0)) {
        Py_CLEAR(obj);
    }
    Py_XDECREF(namespace);
    Py_XDECREF(name);
    Py_XDECREF(pair);
    Py_XDECREF(hash);
    return obj;
}

/* uuid.UUID(text) for the canonical 8-4-4-4-12 form, as its __init__ makes it. */
static PyObject *
make_uuid(PyObject *text)
{
    char digits[33];
    int canonical = uuid_fast && PyUnicode_GET_LENGTH(text) == 36;
    if (canonical) {
        int kind = PyUnicode_KIND(text);
        const void *data = PyUnicode_DATA(text);
        int d = 0;
        for (Py_ssize_t i = 0; i < 36 && canonical; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            if (i == 8 || i == 13 || i == 18 || i == 23) {
                canonical = c == '-';
            }
            else if (hex_value(c) >= 0) {
                digits[d++] = (char)c;
            }
            else {
                canonical = 0;
            }
        }
        digits[32] = '\0';
    }
    if (!canonical) {
        return PyObject_CallOneArg(uuid_type, text);
    }
    PyObject *value = PyLong_FromString(digits, NULL, 16);
    PyTypeObject *tp = (PyTypeObject *)uuid_type;
    PyObject *obj = value == NULL ? NULL : tp->tp_alloc(tp, 0);
    if (obj != NULL
        && (PyObject_GenericSetAttr(obj, str_int, value) < 0
            || PyObject_GenericSetAttr(obj, str_is_safe, safe_uuid_unknown) < 0)) {
        Py_CLEAR(obj);
    }
    Py_XDECREF(value);
    return obj;
}

/* 1 when a and b have equal values of the named attributes, 0 if not, -1 on error. */
static int
same_attrs(PyObject *a, PyObject *b, const char *const *names, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        PyObject *x = PyObject_GetAttrString(a, names[i]);
        PyObject *y = x == NULL ? NULL : PyObject_GetAttrString(b, names[i]);
        int same = y == NULL ? -1 : PyObject_RichCompareBool(x, y, Py_EQ);
        Py_XDECREF(x);
        Py_XDECREF(y);
        if (same != 1) {
            return same;
        }
    }
    return 1;
}

/* The layout check cannot see how __init__ computes the values: compare the
 * fast constructors with the classes on a few probes, once, and use the
 * classes themselves if anything differs. */
static int
verify_constructors(void)
{
    static const char *const named_attrs[] = {"text", "namespace", "name", "_hash"};
    static const char *const uuid_attrs[] = {"int", "is_safe"};
    static const char *const probes[] = {"probe", "ns/probe", "/", "a/b/c"};
    for (size_t i = 0; named_fast && i < 2 * sizeof(probes) / sizeof(probes[0]); i++) {
        PyObject *type = i % 2 ? Symbol_type : Keyword_type;
        PyObject *salt = i % 2 ? symbol_salt : keyword_salt;
        PyObject *text = PyUnicode_FromString(probes[i / 2]);
        PyObject *made = text == NULL ? NULL : PyObject_CallOneArg(type, text);
        PyObject *fast = made == NULL ? NULL : make_named(type, salt, text);
        int same = fast == NULL ? -1 : same_attrs(made, fast, named_attrs, 4);
        Py_XDECREF(text);
        Py_XDECREF(made);
        Py_XDECREF(fast);
        if (same < 0) {
            return -1;
        }
        named_fast = same;
    }
    if (uuid_fast) {
        PyObject *text = PyUnicode_FromString("f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
        PyObject *made = text == NULL ? NULL : PyObject_CallOneArg(uuid_type, text);
        PyObject *fast = made == NULL ? NULL : make_uuid(text);
        int same = fast == NULL ? -1 : same_attrs(made, fast, uuid_attrs, 2);
        Py_XDECREF(text);
        Py_XDECREF(made);
        Py_XDECREF(fast);
        if (same < 0) {
            return -1;
        }
        uuid_fast = same;
    }
    return 0;
}

/* The Keyword (keyword=1) or Symbol named by text[start:end], from the
 * table or made (and checked, in strict mode) on first sight. at: where the
 * token starts, for check_named. Returns a new reference. */
static PyObject *
named(Parser *p, NameTable *table, Py_ssize_t start, Py_ssize_t end, Py_ssize_t at, int keyword)
{
    Py_hash_t hash = (Py_hash_t)hash_span(p, start, end);
    if (table->entries != NULL) {
        Py_ssize_t j = (Py_ssize_t)((size_t)hash & (size_t)table->mask);
        for (;;) {
            NameEntry *entry = &table->entries[j];
            if (entry->value == NULL) {
                break;
            }
            /* Both spans are in the same buffer: equal names, equal bytes. */
            if (entry->hash == hash && entry->length == end - start
                && memcmp((const char *)p->data + start * p->kind,
                          (const char *)p->data + entry->start * p->kind,
                          (size_t)((end - start) * p->kind)) == 0) {
                Py_INCREF(entry->value);
                return entry->value;
            }
            j = (j + 1) & table->mask;
        }
    }
    PyObject *text = PyUnicode_Substring(p->text, start, end);
    if (text == NULL) {
        return NULL;
    }
    if (p->strict) {
        PyObject *args = Py_BuildValue("(OOn)", p->text, text, at);
        PyObject *kwargs = Py_BuildValue("{sOsO}", "keyword", keyword ? Py_True : Py_False,
                                         "strict", Py_True);
        PyObject *checked = NULL;
        if (args != NULL && kwargs != NULL) {
            checked = PyObject_Call(check_named_fn, args, kwargs);
        }
        Py_XDECREF(args);
        Py_XDECREF(kwargs);
        if (checked == NULL) {
            Py_DECREF(text);
            return helper_failed();
        }
        Py_DECREF(checked);
    }
    PyObject *value = keyword ? make_named(Keyword_type, keyword_salt, text)
                              : make_named(Symbol_type, symbol_salt, text);
    if (value == NULL) {
        Py_DECREF(text);
        return helper_failed();
    }
    Py_DECREF(text);
    if ((table->used + 1) * 2 > table->mask + 1 && names_grow(table) < 0) {
        Py_DECREF(value);
        return NULL;
    }
    Py_ssize_t j = (Py_ssize_t)((size_t)hash & (size_t)table->mask);
    while (table->entries[j].value != NULL) {
        j = (j + 1) & table->mask;
    }
    table->entries[j].hash = hash;
    table->entries[j].start = start;
    table->entries[j].length = end - start;
    Py_INCREF(value);
    table->entries[j].value = value;
    table->used++;
    return value;
}


/* A ":keyword" at p->pos. */
static PyObject *
read_keyword(Parser *p)
{
    Py_ssize_t at = p->pos;
    Py_ssize_t start = at + 1;
    Py_ssize_t end = token_end(p, start);
    /* Empty and auto-resolved (::x) keywords are errors for the pure reader. */
    if (end == start || CH(p, start) == ':') {
        return NULL;
    }
    p->pos = end;
    return named(p, &p->keywords, start, end, at, 1);
}

static PyObject *
read_symbol(Parser *p)
{
    Py_ssize_t start = p->pos;
    Py_ssize_t end = token_end(p, start);
    p->pos = end;
    Py_ssize_t n = end - start;
    if (n == 3 && CH(p, start) == 'n' && CH(p, start + 1) == 'i' && CH(p, start + 2) == 'l') {
        Py_RETURN_NONE;
    }
    if (n == 4 && CH(p, start) == 't' && CH(p, start + 1) == 'r' && CH(p, start + 2) == 'u'
        && CH(p, start + 3) == 'e') {
        Py_RETURN_TRUE;
    }
    if (n == 5 && CH(p, start) == 'f' && CH(p, start + 1) == 'a' && CH(p, start + 2) == 'l'
        && CH(p, start + 3) == 's' && CH(p, start + 4) == 'e') {
        Py_RETURN_FALSE;
    }
    return named(p, &p->symbols, start, end, start, 0);
}

static inline int
is_digit(Py_UCS4 c)
{
    return c >= '0' && c <= '9';
}

static inline int
hex_value(Py_UCS4 c)
{
    if (c >= '0' && c <= '9') {
        return (int)(c - '0');
    }
    if (c >= 'a' && c <= 'f') {
        return (int)(c - 'a' + 10);
    }
    if (c >= 'A' && c <= 'F') {
        return (int)(c - 'A' + 10);
    }
    return -1;
}

/* A string whose body text[start:end] holds escapes. The C decoder knows
 * \t \n \r \b \f \" \\ and \uXXXX outside the surrogate range; anything
 * else (octal, surrogates, invalid escapes) goes to _atoms.unescape. */
static PyObject *
decode_escaped(Parser *p, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t length = 0;
    Py_UCS4 maxchar = 0;
    int surrogates = 0, u_escapes = 0, known = 1;
    for (Py_ssize_t i = start; i < end && known; i++) {
        Py_UCS4 c = CH(p, i);
        if (c == '\\') {
            Py_UCS4 e = CH(p, i + 1); /* the scan guarantees i + 1 < end */
            i++;
            switch (e) {
            case 't': c = '\t'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            case 'u': {
                if (i + 4 >= end) {
                    known = 0;
                    break;
                }
                c = 0;
                for (int k = 1; k <= 4; k++) {
                    int h = hex_value(CH(p, i + k));
                    if (h < 0) {
                        known = 0;
                        break;
                    }
                    c = c * 16 + (Py_UCS4)h;
                }
                i += 4;
                u_escapes = 1;
                break;
            }
            default:
                known = 0;
            }
        }
        if (c >= 0xD800 && c <= 0xDFFF) {
            surrogates = 1;
        }
        if (c > maxchar) {
            maxchar = c;
        }
        length++;
    }
    if (!known || (surrogates && u_escapes)) {
        /* The pure decoder's rules (and its errors) for the rare escapes. */
        PyObject *body = PyUnicode_Substring(p->text, start, end);
        if (body == NULL) {
            return NULL;
        }
        PyObject *out = PyObject_CallFunction(unescape_fn, "OOn", body, p->text, start);
        Py_DECREF(body);
        return out == NULL ? helper_failed() : out;
    }
    PyObject *out = PyUnicode_New(length, maxchar);
    if (out == NULL) {
        return NULL;
    }
    int out_kind = PyUnicode_KIND(out);
    void *out_data = PyUnicode_DATA(out);
    Py_ssize_t o = 0;
    for (Py_ssize_t i = start; i < end; i++) {
        Py_UCS4 c = CH(p, i);
        if (c == '\\') {
            Py_UCS4 e = CH(p, ++i);
            switch (e) {
            case 't': c = '\t'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u':
                c = 0;
                for (int k = 1; k <= 4; k++) {
                    c = c * 16 + (Py_UCS4)hex_value(CH(p, i + k));
                }
                i += 4;
                break;
            default: c = e; /* \" and \\ */
            }
        }
        PyUnicode_WRITE(out_kind, out_data, o, c);
        o++;
    }
    return out;
}

static PyObject *
read_string(Parser *p, int *escaped)
{
    Py_ssize_t start = p->pos + 1;
    *escaped = 0;
    Py_ssize_t end = string_end(p, start, escaped);
    if (end < 0) {
        return NULL; /* unterminated */
    }
    p->pos = end + 1;
    if (!*escaped) {
        return PyUnicode_Substring(p->text, start, end);
    }
    return decode_escaped(p, start, end);
}

/* Clinger's fast path: a decimal whose digits fit in 53 bits, scaled by at
 * most 10^22, is one exactly rounded IEEE multiplication or division of two
 * exact doubles, so the result is the correctly rounded value float() gives.
 * Only where doubles are evaluated in double precision (not x87). Returns 0
 * when the token needs the full conversion. The token is a valid float. */
static const double powers_of_ten[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static int
exact_float(Parser *p, Py_ssize_t i, Py_ssize_t end, double *out)
{
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
    int negative = 0;
    Py_UCS4 c = CH(p, i);
    if (c == '+' || c == '-') {
        negative = c == '-';
        i++;
    }
    uint64_t mantissa = 0;
    int digits = 0; /* significant digits taken, leading zeros excluded */
    long scale = 0; /* the power of ten the mantissa is multiplied by */
    int fraction = 0;
    for (; i < end; i++) {
        c = CH(p, i);
        if (c == '.') {
            fraction = 1;
            continue;
        }
        if (!is_digit(c)) {
            break;
        }
        if (mantissa == 0 && c == '0') {
            scale -= fraction;
            continue;
        }
        if (++digits > 16) {
            return 0;
        }
        mantissa = mantissa * 10 + (c - '0');
        scale -= fraction;
    }
    if (i < end) { /* an exponent: e, optional sign, digits */
        i++;
        int exponent_negative = 0;
        c = CH(p, i);
        if (c == '+' || c == '-') {
            exponent_negative = c == '-';
            i++;
        }
        long exponent = 0;
        for (; i < end; i++) {
            if (exponent > 100000) {
                return 0;
            }
            exponent = exponent * 10 + (long)(CH(p, i) - '0');
        }
        scale += exponent_negative ? -exponent : exponent;
    }
    if (mantissa > ((uint64_t)1 << 53) || scale < -22 || scale > 22) {
        return mantissa == 0 ? (*out = negative ? -0.0 : 0.0, 1) : 0;
    }
    double value = (double)mantissa;
    value = scale < 0 ? value / powers_of_ten[-scale] : value * powers_of_ten[scale];
    *out = negative ? -value : value;
    return 1;
#else
    (void)p;
    (void)i;
    (void)end;
    (void)out;
    return 0;
#endif
}

/* ints of up to 18 digits and plain floats here; every other number
 * (N, M, ratios, radix, octal, hex, long ints, invalid) via _atoms.read_number. */
static PyObject *
read_number(Parser *p)
{
    Py_ssize_t start = p->pos;
    Py_ssize_t end = token_end(p, start);
    p->pos = end;
    Py_ssize_t i = start;
    int negative = 0;
    Py_UCS4 c = CH(p, i);
    if (c == '+' || c == '-') {
        negative = c == '-';
        i++;
    }
    Py_ssize_t digits_start = i;
    while (i < end && is_digit(CH(p, i))) {
        i++;
    }
    Py_ssize_t digits = i - digits_start;
    if (i == end) {
        if (digits <= 18 && (digits == 1 || CH(p, digits_start) != '0')) {
            long long value = 0;
            for (Py_ssize_t k = digits_start; k < end; k++) {
                value = value * 10 + (long long)(CH(p, k) - '0');
            }
            return PyLong_FromLongLong(negative ? -value : value);
        }
    }
    else {
        /* _FLOAT_TEXT: digits, then a fraction with an optional exponent, or an exponent. */
        int is_float = 1;
        Py_UCS4 d = CH(p, i);
        if (d == '.') {
            i++;
            while (i < end && is_digit(CH(p, i))) {
                i++;
            }
            if (i < end) {
                d = CH(p, i);
            }
        }
        if (i < end) {
            if (d == 'e' || d == 'E') {
                i++;
                if (i < end && (CH(p, i) == '+' || CH(p, i) == '-')) {
                    i++;
                }
                Py_ssize_t exponent_start = i;
                while (i < end && is_digit(CH(p, i))) {
                    i++;
                }
                is_float = i == end && i > exponent_start;
            }
            else {
                is_float = 0;
            }
        }
        if (is_float) {
            double quick;
            if (exact_float(p, start, end, &quick)) {
                return PyFloat_FromDouble(quick);
            }
            char small[64];
            Py_ssize_t n = end - start;
            char *buffer = n < (Py_ssize_t)sizeof(small) ? small : PyMem_Malloc((size_t)n + 1);
            if (buffer == NULL) {
                PyErr_NoMemory();
                return NULL;
            }
            for (Py_ssize_t k = 0; k < n; k++) {
                buffer[k] = (char)CH(p, start + k);
            }
            buffer[n] = '\0';
            double value = PyOS_string_to_double(buffer, NULL, NULL);
            if (buffer != small) {
                PyMem_Free(buffer);
            }
            if (value == -1.0 && PyErr_Occurred()) {
                return helper_failed();
            }
            return PyFloat_FromDouble(value);
        }
    }
    PyObject *token = PyUnicode_Substring(p->text, start, end);
    if (token == NULL) {
        return NULL;
    }
    PyObject *value =
        p->max_digits < 0
            ? PyObject_CallFunction(read_number_fn, "OOn", token, p->text, start)
            : PyObject_CallFunction(read_number_fn, "OOnn", token, p->text, start, p->max_digits);
    Py_DECREF(token);
    return value == NULL ? helper_failed() : value;
}

/* The #inst text Clojure prints (the pure reader's _INST_TEXT). */
static int
is_inst_text(PyObject *s)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    const char *shape = "dddd-dd-ddTdd:dd:dd";
    Py_ssize_t i = 0;
    for (; shape[i]; i++) {
        if (i >= n) {
            return 0;
        }
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (shape[i] == 'd' ? !is_digit(c) : c != (Py_UCS4)shape[i]) {
            return 0;
        }
    }
    if (i < n && PyUnicode_READ(kind, data, i) == '.') {
        Py_ssize_t first = ++i;
        while (i < n && is_digit(PyUnicode_READ(kind, data, i))) {
            i++;
        }
        if (i - first != 3 && i - first != 6) {
            return 0;
        }
    }
    if (i < n && PyUnicode_READ(kind, data, i) == 'Z') {
        return i + 1 == n;
    }
    if (n - i != 6) {
        return 0;
    }
    Py_UCS4 sign = PyUnicode_READ(kind, data, i);
    return (sign == '+' || sign == '-') && is_digit(PyUnicode_READ(kind, data, i + 1))
           && is_digit(PyUnicode_READ(kind, data, i + 2)) && PyUnicode_READ(kind, data, i + 3) == ':'
           && is_digit(PyUnicode_READ(kind, data, i + 4))
           && is_digit(PyUnicode_READ(kind, data, i + 5));
}

static PyObject *
call_apply_tag(PyObject *tag, PyObject *value, Parser *p, Py_ssize_t at)
{
    PyObject *out = PyObject_CallFunction(apply_tag_fn, "OOOn", tag, value, p->text, at);
    return out == NULL ? helper_failed() : out;
}

/* The position after the whitespace and commas at p->pos (no comments). */
static Py_ssize_t
i_after_space(Parser *p)
{
    Py_ssize_t i = p->pos;
    while (i < p->len && (CH(p, i) == ',' || is_space(CH(p, i)))) {
        i++;
    }
    return i;
}

/* #tag form, p->pos after the tag name. */
static PyObject *
read_tagged(Parser *p, Py_ssize_t at, Py_ssize_t name_start, Py_ssize_t name_end)
{
    Py_ssize_t n = name_end - name_start;
    int inst = n == 4 && CH(p, name_start) == 'i' && CH(p, name_start + 1) == 'n'
               && CH(p, name_start + 2) == 's' && CH(p, name_start + 3) == 't';
    int uuid = n == 4 && CH(p, name_start) == 'u' && CH(p, name_start + 1) == 'u'
               && CH(p, name_start + 2) == 'i' && CH(p, name_start + 3) == 'd';
    /* The pure reader reads `#inst "…"` (only whitespace and commas between)
     * with datetime.fromisoformat when the text is the form Clojure prints,
     * and every other #inst with _atoms.apply_tag: so does this one. */
    int direct = 0;
    PyObject *value;
    if (inst) {
        Py_ssize_t i = i_after_space(p);
        direct = i < p->len && CH(p, i) == '"';
    }
    if (direct) {
        /* Only a string written without escapes is the fast form's. */
        int escaped;
        p->pos = i_after_space(p);
        value = read_string(p, &escaped);
        direct = !escaped;
    }
    else {
        value = read_form(p);
    }
    if (value == NULL) {
        return NULL;
    }
    PyObject *out;
    if (inst) {
        if (direct && PyUnicode_CheckExact(value) && is_inst_text(value)) {
            out = PyObject_CallOneArg(fromisoformat_fn, value);
            if (out == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_ValueError)) {
                    Py_DECREF(value);
                    return helper_failed();
                }
                PyErr_Clear();
                out = call_apply_tag(str_inst, value, p, at);
            }
        }
        else {
            out = call_apply_tag(str_inst, value, p, at);
        }
    }
    else if (uuid) {
        out = PyUnicode_CheckExact(value) ? make_uuid(value) : NULL;
        if (out == NULL) {
            out = helper_failed();
        }
    }
    else {
        PyObject *tag = PyUnicode_Substring(p->text, name_start, name_end);
        out = tag == NULL ? NULL : PyObject_CallFunctionObjArgs(Tagged_type, tag, value, NULL);
        Py_XDECREF(tag);
    }
    Py_DECREF(value);
    return out;
}

/* The items stack[mark:sp] as a new list (the references move into it). */
static PyObject *
take_list(Parser *p, Py_ssize_t mark)
{
    Py_ssize_t n = p->sp - mark;
    PyObject *list = PyList_New(n);
    if (list == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyList_SET_ITEM(list, i, p->stack[mark + i]);
    }
    p->sp = mark;
    return list;
}

/* _reader._build for what this reader leaves to it (unhashable keys,
 * tagged keys, namespaced maps, keys or elements Python's == merged);
 * its errors mean "fall back". */
static PyObject *
build_in_python(Parser *p, int kind, Py_ssize_t mark, PyObject *extra, Py_ssize_t at)
{
    PyObject *items = take_list(p, mark);
    if (items == NULL) {
        return NULL;
    }
    PyObject *args = Py_BuildValue("(iNOOn)", kind, items, extra, p->text, at);
    if (args == NULL) {
        return NULL;
    }
    PyObject *kwargs = Py_BuildValue("{sO}", "strict", p->strict ? Py_True : Py_False);
    if (kwargs == NULL) {
        Py_DECREF(args);
        return NULL;
    }
    PyObject *out = PyObject_Call(build_fn, args, kwargs);
    Py_DECREF(args);
    Py_DECREF(kwargs);
    return out == NULL ? helper_failed() : out;
}

/* A map or set of more than this many keys, not all strings, keywords or
 * symbols (whose hashes are salted) or ints small enough to be their own
 * hash, is built by _reader._build, which refuses hash-flooding input
 * (_reader.MAX_SAME_HASH keys of one hash). */
#define CHECK_HASHES_FROM 100
/* CPython's hash of an int is the int modulo this (2**61 - 1). */
#define HASH_MODULUS 2305843009213693951LL

static int
needs_hash_check(Parser *p, Py_ssize_t mark, Py_ssize_t step)
{
    if ((p->sp - mark) / step <= CHECK_HASHES_FROM) {
        return 0;
    }
    for (Py_ssize_t i = mark; i < p->sp; i += step) {
        PyObject *key = p->stack[i];
        PyObject *type = (PyObject *)Py_TYPE(key);
        if (type == (PyObject *)&PyLong_Type) {
            int overflow;
            long long n = PyLong_AsLongLongAndOverflow(key, &overflow);
            if (!overflow && n > -HASH_MODULUS && n < HASH_MODULUS) {
                continue;
            }
            return 1;
        }
        if (type != (PyObject *)&PyUnicode_Type && type != Keyword_type && type != Symbol_type) {
            return 1;
        }
    }
    return 0;
}

static void
drop_items(Parser *p, Py_ssize_t mark)
{
    while (p->sp > mark) {
        Py_DECREF(p->stack[--p->sp]);
    }
}

static PyObject *
build_map(Parser *p, Py_ssize_t mark, Py_ssize_t at)
{
    Py_ssize_t n = p->sp - mark;
    if (n & 1) {
        return NULL; /* odd number of forms */
    }
    if (needs_hash_check(p, mark, 2)) {
        return build_in_python(p, KIND_MAP, mark, str_empty, at);
    }
    PyObject *dict = PyDict_New();
    if (dict == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = mark; i < p->sp; i += 2) {
        PyObject *key = p->stack[i];
        if ((PyObject *)Py_TYPE(key) == Tagged_type) {
            Py_DECREF(dict);
            return build_in_python(p, KIND_MAP, mark, str_empty, at);
        }
        if (PyDict_SetItem(dict, key, p->stack[i + 1]) < 0) {
            Py_DECREF(dict);
            if (PyErr_ExceptionMatches(PyExc_TypeError)) { /* an unhashable key */
                PyErr_Clear();
                return build_in_python(p, KIND_MAP, mark, str_empty, at);
            }
            return NULL;
        }
    }
    if (PyDict_GET_SIZE(dict) * 2 != n) {
        /* Python's == merged keys: Clojure's = may keep them apart (0 and
         * false) or call them duplicates; the pure reader's _build decides. */
        Py_DECREF(dict);
        return build_in_python(p, KIND_MAP, mark, str_empty, at);
    }
    drop_items(p, mark);
    return dict;
}

static PyObject *
build_set(Parser *p, Py_ssize_t mark, Py_ssize_t at)
{
    if (needs_hash_check(p, mark, 1)) {
        return build_in_python(p, KIND_SET, mark, str_empty, at);
    }
    PyObject *set = PyFrozenSet_New(NULL);
    if (set == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = mark; i < p->sp; i++) {
        PyObject *item = p->stack[i];
        if ((PyObject *)Py_TYPE(item) == Tagged_type) {
            Py_DECREF(set);
            return build_in_python(p, KIND_SET, mark, str_empty, at);
        }
        if (PySet_Add(set, item) < 0) {
            Py_DECREF(set);
            if (PyErr_ExceptionMatches(PyExc_TypeError)) {
                PyErr_Clear();
                return build_in_python(p, KIND_SET, mark, str_empty, at);
            }
            return NULL;
        }
    }
    if (PySet_GET_SIZE(set) != p->sp - mark) {
        /* Merged elements (1, 1.0, true): as for maps, _build decides. */
        Py_DECREF(set);
        return build_in_python(p, KIND_SET, mark, str_empty, at);
    }
    drop_items(p, mark);
    return set;
}

/* A collection whose opener ends at p->pos; at: where the opener starts. */
static PyObject *
read_collection(Parser *p, int kind, Py_ssize_t at, PyObject *namespace)
{
    Py_UCS4 closer = kind == KIND_VEC ? ']' : kind == KIND_LIST ? ')' : '}';
    Py_ssize_t mark = p->sp;
    for (;;) {
        if (skip_ignored(p) < 0) {
            return NULL;
        }
        if (p->pos >= p->len) {
            return NULL; /* unterminated */
        }
        Py_UCS4 c = CH(p, p->pos);
        if (c == ']' || c == ')' || c == '}') {
            if (c != closer) {
                return NULL;
            }
            p->pos++;
            break;
        }
        PyObject *item = read_form(p);
        if (item == NULL || push(p, item) < 0) {
            return NULL;
        }
        maybe_yield(p);
    }
    switch (kind) {
    case KIND_VEC:
        return take_list(p, mark);
    case KIND_LIST: {
        Py_ssize_t n = p->sp - mark;
        PyObject *tuple = PyTuple_New(n);
        if (tuple == NULL) {
            return NULL;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            PyTuple_SET_ITEM(tuple, i, p->stack[mark + i]);
        }
        p->sp = mark;
        return tuple;
    }
    case KIND_MAP:
        return build_map(p, mark, at);
    case KIND_SET:
        return build_set(p, mark, at);
    default:
        return build_in_python(p, KIND_NSMAP, mark, namespace, at);
    }
}

/* #:ns{...}, p->pos at '#'. */
static PyObject *
read_namespaced_map(Parser *p)
{
    Py_ssize_t at = p->pos;
    Py_ssize_t start = at + 2;
    Py_ssize_t end = token_end(p, start);
    if (end == start || CH(p, start) == ':') {
        return NULL;
    }
    p->pos = end;
    skip_space(p); /* whitespace and comments, never #_, before the brace */
    if (p->pos >= p->len || CH(p, p->pos) != '{') {
        return NULL;
    }
    p->pos++;
    PyObject *namespace = PyUnicode_Substring(p->text, start, end);
    if (namespace == NULL) {
        return NULL;
    }
    PyObject *out = read_collection(p, KIND_NSMAP, at, namespace);
    Py_DECREF(namespace);
    return out;
}

static PyObject *
read_dispatch(Parser *p)
{
    Py_ssize_t at = p->pos;
    if (at + 1 >= p->len) {
        return NULL;
    }
    Py_UCS4 c = CH(p, at + 1);
    if (c == '{') {
        p->pos += 2;
        return read_collection(p, KIND_SET, at, NULL);
    }
    if (c == ':') {
        return read_namespaced_map(p);
    }
    if (c == '#') { /* ##Inf ##-Inf ##NaN */
        Py_ssize_t end = token_end(p, at + 2);
        PyObject *name = PyUnicode_Substring(p->text, at + 2, end);
        if (name == NULL) {
            return NULL;
        }
        PyObject *value = PyDict_GetItemWithError(symbolic_values, name);
        Py_DECREF(name);
        if (value == NULL) {
            return PyErr_Occurred() ? helper_failed() : NULL;
        }
        p->pos = end;
        Py_INCREF(value);
        return value;
    }
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) {
        Py_ssize_t end = token_end(p, at + 1);
        p->pos = end;
        return read_tagged(p, at, at + 1, end);
    }
    return NULL; /* #= and other dispatches: errors */
}

static PyObject *
read_char(Parser *p)
{
    Py_ssize_t at = p->pos;
    if (at + 1 >= p->len) {
        return NULL;
    }
    /* \ then any one character, then the token characters after it. */
    Py_ssize_t end = token_end(p, at + 2);
    p->pos = end;
    PyObject *token = PyUnicode_Substring(p->text, at + 1, end);
    if (token == NULL) {
        return NULL;
    }
    PyObject *value = PyObject_CallFunction(read_char_fn, "OOn", token, p->text, at);
    Py_DECREF(token);
    return value == NULL ? helper_failed() : value;
}

/* One form, after any whitespace, comments and discarded forms. */
static PyObject *
read_form(Parser *p)
{
    if (++p->depth > MAX_DEPTH) {
        return NULL;
    }
    PyObject *out = NULL;
    if (skip_ignored(p) < 0 || p->pos >= p->len) {
        goto done;
    }
    Py_UCS4 c = CH(p, p->pos);
    Py_ssize_t at = p->pos;
    int escaped;
    switch (c) {
    case '"':
        out = read_string(p, &escaped);
        break;
    case ':':
        out = read_keyword(p);
        break;
    case '[':
        p->pos++;
        out = read_collection(p, KIND_VEC, at, NULL);
        break;
    case '{':
        p->pos++;
        out = read_collection(p, KIND_MAP, at, NULL);
        break;
    case '(':
        p->pos++;
        out = read_collection(p, KIND_LIST, at, NULL);
        break;
    case '#':
        out = read_dispatch(p);
        break;
    case '\\':
        out = read_char(p);
        break;
    case ']':
    case ')':
    case '}':
        break; /* a closer where a form must be */
    case '+':
    case '-':
        if (p->pos + 1 < p->len && is_digit(CH(p, p->pos + 1))) {
            out = read_number(p);
        }
        else {
            out = read_symbol(p);
        }
        break;
    default:
        if (is_digit(c)) {
            out = read_number(p);
        }
        else {
            out = read_symbol(p);
        }
    }
done:
    p->depth--;
    return out;
}

static int
parser_init(Parser *p, PyObject *text, int strict, Py_ssize_t max_digits)
{
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "text must be a str, not %.100s", Py_TYPE(text)->tp_name);
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000
    /* A str made by the legacy (pre-PEP 393) C API has no kind or data yet. */
    if (PyUnicode_READY(text) < 0) {
        return -1;
    }
#endif
    if (load_helpers() < 0) {
        return -1;
    }
    memset(p, 0, sizeof(*p));
    Py_INCREF(text);
    p->text = text;
    p->kind = PyUnicode_KIND(text);
    p->data = PyUnicode_DATA(text);
    p->len = PyUnicode_GET_LENGTH(text);
    p->strict = strict;
    p->max_digits = max_digits;
    p->keywords.mask = -1;
    p->symbols.mask = -1;
    p->turns = (GilTurns)GIL_TURNS_INIT;
    return 0;
}

static void
parser_clear(Parser *p)
{
    drop_items(p, 0);
    PyMem_Free(p->stack);
    p->stack = NULL;
    p->cap = 0;
    names_clear(&p->keywords);
    names_clear(&p->symbols);
    Py_CLEAR(p->text);
}

/* NULL without an exception set means "the pure reader must decide"; so
 * does a RecursionError (a key too deep to hash), which the pure reader
 * reports as an EdnDepthError with its line and column. */
static PyObject *
signal_unsupported(void)
{
    if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_RecursionError)) {
        PyErr_Clear();
        PyErr_SetNone(Unsupported);
    }
    return NULL;
}

PyDoc_STRVAR(loads_doc,
"loads(text, strict, max_digits=<read_number's default>, /)\n--\n\n"
"The one EDN value of text, or raise Unsupported when the pure reader must\n"
"read it (any error, a construct left to it, or very deep nesting).");

static PyObject *
creader_loads(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 && nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "loads(text, strict[, max_digits]) takes 2 or 3 arguments");
        return NULL;
    }
    int strict = PyObject_IsTrue(args[1]);
    if (strict < 0) {
        return NULL;
    }
    Py_ssize_t max_digits = nargs == 3 ? PyLong_AsSsize_t(args[2]) : -1;
    if (max_digits == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Parser p;
    if (parser_init(&p, args[0], strict, max_digits) < 0) {
        return NULL;
    }
    PyObject *value = NULL;
    if (skip_ignored(&p) == 0 && p.pos < p.len) {
        value = read_form(&p);
        /* Exactly one value: anything but whitespace, comments and discarded
         * forms after it is the pure reader's error to report. */
        if (value != NULL && (skip_ignored(&p) < 0 || p.pos < p.len)) {
            Py_CLEAR(value);
        }
    }
    parser_clear(&p);
    return value == NULL ? signal_unsupported() : value;
}

/* ------------------------------------------------------------------ */
/* Scanner: the top-level values of a text, one at a time.            */

typedef struct {
    PyObject_HEAD
    Parser parser;
    Py_ssize_t count;
    int done;
} Scanner;

static int
Scanner_init(Scanner *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"text", "strict", "max_digits", NULL};
    PyObject *text;
    int strict;
    Py_ssize_t max_digits = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Up|n:Scanner", names, &text, &strict,
                                     &max_digits)) {
        return -1;
    }
    parser_clear(&self->parser);
    if (parser_init(&self->parser, text, strict, max_digits) < 0) {
        return -1;
    }
    self->count = 0;
    self->done = 0;
    return 0;
}

static void
Scanner_dealloc(Scanner *self)
{
    parser_clear(&self->parser);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Scanner_next(Scanner *self)
{
    Parser *p = &self->parser;
    if (self->done || p->text == NULL) {
        return NULL;
    }
    PyObject *value = NULL;
    if (skip_ignored(p) == 0) {
        if (p->pos >= p->len) {
            self->done = 1;
            return NULL; /* StopIteration */
        }
        value = read_form(p);
    }
    if (value == NULL) {
        self->done = 1;
        drop_items(p, 0);
        return signal_unsupported();
    }
    self->count++;
    return value;
}

static PyMemberDef Scanner_members[] = {
    {"count", Py_T_PYSSIZET, offsetof(Scanner, count), Py_READONLY,
     "How many values the scanner has returned."},
    {NULL, 0, 0, 0, NULL},
};

PyDoc_STRVAR(Scanner_doc,
"Scanner(text, strict, max_digits=<read_number's default>)\n--\n\n"
"An iterator over the top-level EDN values of text. It raises Unsupported\n"
"where the pure reader must take over: that reader, skipping the first\n"
"``count`` values, gives the rest or the precise error.");

static PyTypeObject Scanner_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "garrison.edn._creader.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = Scanner_doc,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)Scanner_next,
    .tp_members = Scanner_members,
    .tp_init = (initproc)Scanner_init,
    .tp_new = PyType_GenericNew,
};

/* ------------------------------------------------------------------ */

static PyMethodDef creader_methods[] = {
    {"loads", (PyCFunction)(void (*)(void))creader_loads, METH_FASTCALL, loads_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef creader_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "garrison.edn._creader",
    .m_doc = "The EDN reader's C accelerator (see garrison.edn._api).",
    .m_size = -1,
    .m_methods = creader_methods,
};

PyMODINIT_FUNC
PyInit__creader(void)
{
    init_classes();
    str_inst = PyUnicode_InternFromString("inst");
    str_empty = PyUnicode_InternFromString("");
    str_text = PyUnicode_InternFromString("text");
    str_namespace = PyUnicode_InternFromString("namespace");
    str_name = PyUnicode_InternFromString("name");
    str_hash = PyUnicode_InternFromString("_hash");
    str_int = PyUnicode_InternFromString("int");
    str_is_safe = PyUnicode_InternFromString("is_safe");
    if (str_inst == NULL || str_empty == NULL || str_text == NULL || str_namespace == NULL
        || str_name == NULL || str_hash == NULL || str_int == NULL || str_is_safe == NULL) {
        return NULL;
    }
    if (PyType_Ready(&Scanner_type) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&creader_module);
    if (module == NULL) {
        return NULL;
    }
    if (Unsupported == NULL) {
        Unsupported = PyErr_NewExceptionWithDoc(
            "garrison.edn._creader.Unsupported",
            "The C reader leaves this text to the pure reader (never escapes garrison).",
            NULL, NULL);
        if (Unsupported == NULL) {
            Py_DECREF(module);
            return NULL;
        }
    }
    Py_INCREF(Unsupported);
    if (PyModule_AddObject(module, "Unsupported", Unsupported) < 0) {
        Py_DECREF(Unsupported);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&Scanner_type);
    if (PyModule_AddObject(module, "Scanner", (PyObject *)&Scanner_type) < 0) {
        Py_DECREF(&Scanner_type);
        Py_DECREF(module);
        return NULL;
    }
    if (PyModule_AddIntConstant(module, "MAX_DEPTH", MAX_DEPTH) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
