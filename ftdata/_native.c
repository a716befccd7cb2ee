/* Per-reply text statistics for FT309's pre-filters, and the ASCII text keys of the
 * duplicate rules, each in one pass over a str.
 *
 * Each function here has a pure-Python twin in ftdata/similarity/native.py that defines what it
 * returns; tests/test_native.py checks that both agree on arbitrary text. Words are what
 * str.split() yields and whitespace is what str.isspace() accepts (Py_UNICODE_ISSPACE,
 * the test CPython itself uses), for every PEP 393 kind, lone surrogates included. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

/* A piece of the text (a word or a unit): where it starts, its length in code points, how
 * many times it occurs. */
typedef struct {
    Py_ssize_t start;
    Py_ssize_t len;
    Py_ssize_t count;
    Py_uhash_t hash;
} Piece;

/* An open-addressing set of pieces of one str, compared by their code points. */
typedef struct {
    Piece *slots;
    Py_ssize_t mask;
    Py_ssize_t used;
    Piece local[256];
} PieceSet;

static void
set_init(PieceSet *set)
{
    memset(set->local, 0, sizeof(set->local));
    set->slots = set->local;
    set->mask = (Py_ssize_t)(sizeof(set->local) / sizeof(Piece)) - 1;
    set->used = 0;
}

/* Doubles the table, so that it stays at most half full. */
static int
set_grow(PieceSet *set)
{
    Py_ssize_t size = set->mask + 1;
    if (size > PY_SSIZE_T_MAX / 2 / (Py_ssize_t)sizeof(Piece)) {
        PyErr_NoMemory();
        return -1;
    }
    Piece *slots = (Piece *)PyMem_Calloc((size_t)(2 * size), sizeof(Piece));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t mask = 2 * size - 1;
    for (Py_ssize_t s = 0; s < size; s++) {
        if (set->slots[s].hash != 0) {
            Py_ssize_t i = (Py_ssize_t)(set->slots[s].hash & (Py_uhash_t)mask);
            while (slots[i].hash != 0) {
                i = (i + 1) & mask;
            }
            slots[i] = set->slots[s];
        }
    }
    if (set->slots != set->local) {
        PyMem_Free(set->slots);
    }
    set->slots = slots;
    set->mask = mask;
    return 0;
}

static void
set_free(PieceSet *set)
{
    if (set->slots != set->local) {
        PyMem_Free(set->slots);
    }
}

/* FNV-1a over the code points. */
#define HASH_START ((Py_uhash_t)14695981039346656037ULL)
#define HASH_STEP(h, ch) (((h) ^ (Py_uhash_t)(ch)) * (Py_uhash_t)1099511628211ULL)

static Py_uhash_t
piece_hash(int kind, const void *data, Py_ssize_t start, Py_ssize_t len)
{
    Py_uhash_t h = HASH_START;
    for (Py_ssize_t i = start; i < start + len; i++) {
        h = HASH_STEP(h, PyUnicode_READ(kind, data, i));
    }
    return h | 1; /* 0 marks an empty slot */
}

/* Adds one occurrence of data[start:start + len], whose piece_hash is h; returns its count after the addition,
 * or -1 with an exception set. */
static Py_ssize_t
set_add(PieceSet *set, Py_uhash_t h, int kind, const void *data, Py_ssize_t start, Py_ssize_t len)
{
    if (2 * (set->used + 1) > set->mask + 1 && set_grow(set) < 0) {
        return -1;
    }
    Py_ssize_t i = (Py_ssize_t)(h & (Py_uhash_t)set->mask);
    const char *bytes = (const char *)data;
    for (;;) {
        Piece *slot = &set->slots[i];
        if (slot->hash == 0) {
            slot->hash = h;
            slot->start = start;
            slot->len = len;
            slot->count = 1;
            set->used++;
            return 1;
        }
        if (slot->hash == h && slot->len == len &&
            memcmp(bytes + slot->start * kind, bytes + start * kind, (size_t)(len * kind)) == 0) {
            return ++slot->count;
        }
        i = (i + 1) & set->mask;
    }
}

static int
as_text(PyObject *arg, const char *func)
{
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "%s() expects a str, not %.100s", func, Py_TYPE(arg)->tp_name);
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(arg) < 0) {
        return -1;
    }
#endif
    return 0;
}

static int
compare_desc(const void *a, const void *b)
{
    Py_ssize_t x = *(const Py_ssize_t *)a, y = *(const Py_ssize_t *)b;
    return (x < y) - (x > y);
}

PyDoc_STRVAR(word_stats_doc,
             "word_stats(text, n, /)\n--\n\n"
             "(words, distinct, top, chars) of text.split(): the number of words, of distinct words, the sum of\n"
             "the n largest word counts, and the characters of the distinct words added up.");

static PyObject *
word_stats(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "word_stats() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (as_text(args[0], "word_stats") < 0) {
        return NULL;
    }
    Py_ssize_t n = PyLong_AsSsize_t(args[1]);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *text = args[0];
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);

    PieceSet set;
    set_init(&set);
    Py_ssize_t words = 0, chars = 0;
    /* One loop per kind, so that reading a character is a load, not a switch. */
#define SCAN_WORDS(T)                                                                   \
    do {                                                                                \
        const T *p = (const T *)data;                                                   \
        Py_ssize_t i = 0;                                                               \
        while (i < length) {                                                            \
            while (i < length && Py_UNICODE_ISSPACE(p[i])) {                            \
                i++;                                                                    \
            }                                                                           \
            if (i == length) {                                                          \
                break;                                                                  \
            }                                                                           \
            Py_ssize_t start = i;                                                       \
            Py_uhash_t h = HASH_START;                                                  \
            while (i < length && !Py_UNICODE_ISSPACE(p[i])) {                           \
                h = HASH_STEP(h, p[i]);                                                 \
                i++;                                                                    \
            }                                                                           \
            words++;                                                                    \
            Py_ssize_t count = set_add(&set, h | 1, kind, data, start, i - start);      \
            if (count < 0) {                                                            \
                set_free(&set);                                                         \
                return NULL;                                                            \
            }                                                                           \
            if (count == 1) {                                                           \
                chars += i - start;                                                     \
            }                                                                           \
        }                                                                               \
    } while (0)
    if (kind == PyUnicode_1BYTE_KIND) {
        SCAN_WORDS(Py_UCS1);
    }
    else if (kind == PyUnicode_2BYTE_KIND) {
        SCAN_WORDS(Py_UCS2);
    }
    else {
        SCAN_WORDS(Py_UCS4);
    }
#undef SCAN_WORDS
    Py_ssize_t distinct = set.used, top = 0;
    if (n >= distinct) {
        top = words;
    }
    else if (n > 0) {
        Py_ssize_t *counts = (Py_ssize_t *)PyMem_Malloc((size_t)distinct * sizeof(Py_ssize_t));
        if (counts == NULL) {
            set_free(&set);
            return PyErr_NoMemory();
        }
        Py_ssize_t k = 0;
        for (Py_ssize_t s = 0; s <= set.mask; s++) {
            if (set.slots[s].hash != 0) {
                counts[k++] = set.slots[s].count;
            }
        }
        qsort(counts, (size_t)distinct, sizeof(Py_ssize_t), compare_desc);
        for (Py_ssize_t j = 0; j < n; j++) {
            top += counts[j];
        }
        PyMem_Free(counts);
    }
    set_free(&set);
    return Py_BuildValue("(nnnn)", words, distinct, top, chars);
}

PyDoc_STRVAR(looped_units_doc,
             "looped_units(text, period, /)\n--\n\n"
             "(total, looped) of the sentences and lines of text (cut after '.', '!' or '?' followed by spaces\n"
             "or tabs, and at line breaks; stripped; empty ones left out): their characters added up, and those\n"
             "of the units longer than 3 characters equal to one of the period units before them.");

typedef struct {
    Py_ssize_t start;
    Py_ssize_t len;
    Py_uhash_t hash;
} Unit;

static PyObject *
looped_units(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "looped_units() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (as_text(args[0], "looped_units") < 0) {
        return NULL;
    }
    Py_ssize_t period = PyLong_AsSsize_t(args[1]);
    if (period == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *text = args[0];
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    const char *bytes = (const char *)data;
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    /* the window of the period units before the current one, as a ring */
    Py_ssize_t window = period > 0 ? (period < 64 ? period : 64) : 0;
    Unit ring[64];
    Unit *units = ring;
    if (period > 64) {
        /* a window this wide is never used by the rules; all units are kept */
        units = (Unit *)PyMem_Malloc((size_t)(length / 2 + 1) * sizeof(Unit));
        if (units == NULL) {
            return PyErr_NoMemory();
        }
    }
    Py_ssize_t total = 0, looped = 0, seen = 0;
    Py_ssize_t start = 0, i = 0;
    while (i <= length) {
        Py_ssize_t end = -1, next = 0;
        if (i == length) {
            end = i;
            next = i + 1;
        }
        else {
            Py_UCS4 ch = PyUnicode_READ(kind, data, i);
            if (ch == '\n') {
                end = i;
                next = i + 1;
            }
            else if ((ch == '.' || ch == '!' || ch == '?') && i + 1 < length) {
                Py_UCS4 after = PyUnicode_READ(kind, data, i + 1);
                if (after == ' ' || after == '\t') {
                    end = i + 1; /* the stop stays with its sentence */
                    next = i + 2;
                    while (next < length) {
                        Py_UCS4 c = PyUnicode_READ(kind, data, next);
                        if (c != ' ' && c != '\t') {
                            break;
                        }
                        next++;
                    }
                }
            }
        }
        if (end < 0) {
            i++;
            continue;
        }
        Py_ssize_t a = start, b = end;
        while (a < b && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, a))) {
            a++;
        }
        while (b > a && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, b - 1))) {
            b--;
        }
        if (b > a) {
            Py_ssize_t len = b - a;
            Py_uhash_t h = piece_hash(kind, data, a, len);
            total += len;
            if (len > 3) {
                Py_ssize_t first = period > 64 ? (seen > period ? seen - period : 0) : (seen > window ? seen - window : 0);
                for (Py_ssize_t k = first; k < seen; k++) {
                    const Unit *u = period > 64 ? &units[k] : &ring[k % 64];
                    if (u->hash == h && u->len == len &&
                        memcmp(bytes + u->start * kind, bytes + a * kind, (size_t)(len * kind)) == 0) {
                        looped += len;
                        break;
                    }
                }
            }
            Unit *slot = period > 64 ? &units[seen] : &ring[seen % 64];
            slot->start = a;
            slot->len = len;
            slot->hash = h;
            seen++;
        }
        start = i = next;
    }
    if (units != ring) {
        PyMem_Free(units);
    }
    return Py_BuildValue("(nn)", total, looped);
}

PyDoc_STRVAR(char_run_doc,
             "char_run(text, limit, markup, /)\n--\n\n"
             "The first maximal run of one non-space character, 32 long or more, longer than limit (4 * limit\n"
             "for a character of markup), as (character, length); None when there is none.");

static PyObject *
char_run(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "char_run() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (as_text(args[0], "char_run") < 0 || as_text(args[2], "char_run") < 0) {
        return NULL;
    }
    Py_ssize_t limit = PyLong_AsSsize_t(args[1]);
    if (limit == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *text = args[0], *markup = args[2];
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    Py_ssize_t i = 0;
    while (i < length) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        Py_ssize_t j = i + 1;
        while (j < length && PyUnicode_READ(kind, data, j) == ch) {
            j++;
        }
        Py_ssize_t run = j - i;
        if (run >= 32 && !Py_UNICODE_ISSPACE(ch)) {
            Py_ssize_t found = PyUnicode_FindChar(markup, ch, 0, PyUnicode_GET_LENGTH(markup), 1);
            if (found == -2) {
                return NULL;
            }
            /* run > 4 * limit, without the product (which may overflow) */
            int longer = found >= 0 ? (run - 1) / 4 >= limit : run > limit;
            if (longer) {
                return Py_BuildValue("(Nn)", PyUnicode_FromOrdinal((int)ch), run);
            }
        }
        i = j;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(ascii_words_doc,
             "ascii_words(text, table, delete, /)\n--\n\n"
             "b' '.join(text.encode('ascii').translate(table, delete).split()), in one pass; None when text\n"
             "is not ASCII.");

static PyObject *
ascii_words(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "ascii_words() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (as_text(args[0], "ascii_words") < 0) {
        return NULL;
    }
    if (!PyBytes_Check(args[1]) || PyBytes_GET_SIZE(args[1]) != 256) {
        PyErr_SetString(PyExc_ValueError, "ascii_words() expects a translation table of 256 bytes");
        return NULL;
    }
    if (!PyBytes_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "ascii_words() expects the characters to delete as bytes");
        return NULL;
    }
    PyObject *text = args[0];
    if (!PyUnicode_IS_ASCII(text)) {
        Py_RETURN_NONE;
    }
    const unsigned char *table = (const unsigned char *)PyBytes_AS_STRING(args[1]);
    const unsigned char *del = (const unsigned char *)PyBytes_AS_STRING(args[2]);
    Py_ssize_t ndel = PyBytes_GET_SIZE(args[2]);
    /* What each byte becomes: its mapping, whitespace as ' ', and whether it is kept at
     * all and is a space; the loop below then has no branch to mispredict at each word. */
    unsigned char mapped[256], keep[256], space[256];
    for (int c = 0; c < 256; c++) {
        unsigned char m = table[c];
        space[c] = Py_ISSPACE(m) ? 1 : 0;
        mapped[c] = space[c] ? ' ' : m;
        keep[c] = 1;
    }
    for (Py_ssize_t k = 0; k < ndel; k++) {
        keep[del[k]] = 0;
    }
    const Py_UCS1 *p = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    PyObject *out = PyBytes_FromStringAndSize(NULL, length);
    if (out == NULL) {
        return NULL;
    }
    char *w = PyBytes_AS_STRING(out);
    Py_ssize_t n = 0;
    unsigned int after_space = 1; /* at the start, as after a space: leading ones are dropped */
    for (Py_ssize_t i = 0; i < length; i++) {
        unsigned char c = p[i];
        unsigned int sp = space[c];
        /* a kept byte is written unless it is a space after a space */
        unsigned int write = keep[c] & ~(sp & after_space) & 1u;
        w[n] = (char)mapped[c];
        n += write;
        after_space = write ? sp : after_space;
    }
    if (n > 0 && after_space) {
        n--; /* the trailing space */
    }
    if (n < length && _PyBytes_Resize(&out, n) < 0) {
        return NULL;
    }
    return out;
}

static PyMethodDef native_methods[] = {
    {"word_stats", (PyCFunction)(void (*)(void))word_stats, METH_FASTCALL, word_stats_doc},
    {"looped_units", (PyCFunction)(void (*)(void))looped_units, METH_FASTCALL, looped_units_doc},
    {"char_run", (PyCFunction)(void (*)(void))char_run, METH_FASTCALL, char_run_doc},
    {"ascii_words", (PyCFunction)(void (*)(void))ascii_words, METH_FASTCALL, ascii_words_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ftdata._native",
    .m_doc = "Text statistics for FT309's pre-filters and ASCII text keys (the pure-Python definitions are in ftdata.similarity.native).",
    .m_size = 0,
    .m_methods = native_methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    return PyModuleDef_Init(&native_module);
}
