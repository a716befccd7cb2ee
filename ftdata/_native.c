/* Per-reply text statistics for FT309's pre-filters, FT301's search for control characters, FT311's
 * for a hint of mojibake, and the text keys of the duplicate rules, each in one pass over a str.
 *
 * Each function here has a pure-Python twin in ftdata/similarity/native.py that defines what it
 * returns; tests/test_native.py checks that both agree on arbitrary text. Words are what
 * str.split() yields and whitespace is what str.isspace() accepts (Py_UNICODE_ISSPACE,
 * the test CPython itself uses), for every PEP 393 kind, lone surrogates included. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
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

#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

/* Adds one occurrence of data[start:start + len], whose hash is h (never 0); returns its count after the addition,
 * or -1 with an exception set. Inlined in the scans: it runs once a word. */
static ALWAYS_INLINE Py_ssize_t
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

/* Py_UNICODE_ISSPACE of each Latin-1 character, filled when the module is loaded. */
static unsigned char latin1_space[256];

/* A hash of the Latin-1 characters p[0:len] (never 0, which marks an empty slot): eight bytes a
 * multiplication, rather than one; read byte by byte, so that it never reads past the word. */
static Py_uhash_t
bytes_hash(const Py_UCS1 *p, Py_ssize_t len)
{
    uint64_t h = (uint64_t)HASH_START ^ (uint64_t)len;
    Py_ssize_t k = 0;
    for (; k + 8 <= len; k += 8) {
        uint64_t x = 0;
        for (int j = 0; j < 8; j++) {
            x |= (uint64_t)p[k + j] << (8 * j);
        }
        h = (h ^ x) * (uint64_t)0x9E3779B97F4A7C15ULL;
        h ^= h >> 29;
    }
    if (k < len) {
        uint64_t x = 0;
        for (int j = 0; k + j < len; j++) {
            x |= (uint64_t)p[k + j] << (8 * j);
        }
        h = (h ^ x) * (uint64_t)0x9E3779B97F4A7C15ULL;
    }
    h ^= h >> 32;
    return (Py_uhash_t)h | 1;
}

/* The figures of word_stats for text[start:end] but the top counts: out = (words, distinct, -, chars),
 * the distinct words left in set (which the caller frees, with set_free, whatever the result); -1
 * with an exception set when memory runs out. */
static int
count_words(PyObject *text, Py_ssize_t start, Py_ssize_t end, PieceSet *set, Py_ssize_t out[4])
{
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t words = 0, chars = 0;
    /* One loop per kind, so that reading a character is a load, not a switch. */
#define SCAN_WORDS(T)                                                                   \
    do {                                                                                \
        const T *p = (const T *)data;                                                   \
        Py_ssize_t i = start;                                                           \
        while (i < end) {                                                               \
            while (i < end && Py_UNICODE_ISSPACE(p[i])) {                               \
                i++;                                                                    \
            }                                                                           \
            if (i == end) {                                                             \
                break;                                                                  \
            }                                                                           \
            Py_ssize_t first = i;                                                       \
            Py_uhash_t h = HASH_START;                                                  \
            while (i < end && !Py_UNICODE_ISSPACE(p[i])) {                              \
                h = HASH_STEP(h, p[i]);                                                 \
                i++;                                                                    \
            }                                                                           \
            words++;                                                                    \
            Py_ssize_t count = set_add(set, h | 1, kind, data, first, i - first);       \
            if (count < 0) {                                                            \
                return -1;                                                              \
            }                                                                           \
            if (count == 1) {                                                           \
                chars += i - first;                                                     \
            }                                                                           \
        }                                                                               \
    } while (0)
    if (kind == PyUnicode_1BYTE_KIND) {
        /* the common kind: whitespace from a table, and each word hashed eight characters at a time */
        const Py_UCS1 *p = (const Py_UCS1 *)data;
        Py_ssize_t i = start;
        while (i < end) {
            while (i < end && latin1_space[p[i]]) {
                i++;
            }
            if (i == end) {
                break;
            }
            Py_ssize_t first = i;
            while (i < end && !latin1_space[p[i]]) {
                i++;
            }
            words++;
            Py_ssize_t count = set_add(set, bytes_hash(p + first, i - first), kind, data, first, i - first);
            if (count < 0) {
                return -1;
            }
            if (count == 1) {
                chars += i - first;
            }
        }
    }
    else if (kind == PyUnicode_2BYTE_KIND) {
        SCAN_WORDS(Py_UCS2);
    }
    else {
        SCAN_WORDS(Py_UCS4);
    }
#undef SCAN_WORDS
    out[0] = words;
    out[1] = set->used;
    out[2] = 0;
    out[3] = chars;
    return 0;
}

/* The n largest counts of the pieces of set added up (all of them, words, when n >= their number);
 * -1 with an exception set when memory runs out. */
static Py_ssize_t
top_counts(const PieceSet *set, Py_ssize_t n, Py_ssize_t words)
{
    Py_ssize_t distinct = set->used, top = 0;
    if (n >= distinct) {
        return words;
    }
    if (n <= 0) {
        return 0;
    }
    if (n <= 64) {
        /* the n largest so far, in decreasing order: one pass, no sort of every count */
        Py_ssize_t best[64];
        Py_ssize_t kept = 0;
        for (Py_ssize_t s = 0; s <= set->mask; s++) {
            if (set->slots[s].hash == 0) {
                continue;
            }
            Py_ssize_t c = set->slots[s].count;
            if (kept == n && c <= best[n - 1]) {
                continue;
            }
            Py_ssize_t j = kept < n ? kept++ : n - 1;
            while (j > 0 && best[j - 1] < c) {
                best[j] = best[j - 1];
                j--;
            }
            best[j] = c;
        }
        for (Py_ssize_t j = 0; j < n; j++) {
            top += best[j];
        }
        return top;
    }
    Py_ssize_t *counts = (Py_ssize_t *)PyMem_Malloc((size_t)distinct * sizeof(Py_ssize_t));
    if (counts == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t k = 0;
    for (Py_ssize_t s = 0; s <= set->mask; s++) {
        if (set->slots[s].hash != 0) {
            counts[k++] = set->slots[s].count;
        }
    }
    qsort(counts, (size_t)distinct, sizeof(Py_ssize_t), compare_desc);
    for (Py_ssize_t j = 0; j < n; j++) {
        top += counts[j];
    }
    PyMem_Free(counts);
    return top;
}

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
    Py_ssize_t out[4];
    PieceSet set;
    set_init(&set);
    if (count_words(args[0], 0, PyUnicode_GET_LENGTH(args[0]), &set, out) < 0 ||
        (out[2] = top_counts(&set, n, out[0])) < 0) {
        set_free(&set);
        return NULL;
    }
    set_free(&set);
    return Py_BuildValue("(nnnn)", out[0], out[1], out[2], out[3]);
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

/* The figures of looped_units for text[begin:length]: out = (total, looped); -1 with an exception
 * set when memory runs out. */
static int
scan_units(PyObject *text, Py_ssize_t begin, Py_ssize_t length, Py_ssize_t period, Py_ssize_t out[2])
{
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    const char *bytes = (const char *)data;
    /* the window of the period units before the current one, as a ring */
    Py_ssize_t window = period > 0 ? (period < 64 ? period : 64) : 0;
    Unit ring[64];
    Unit *units = ring;
    if (period > 64) {
        /* a window this wide is never used by the rules; all units are kept */
        units = (Unit *)PyMem_Malloc((size_t)((length - begin) / 2 + 1) * sizeof(Unit));
        if (units == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    Py_ssize_t total = 0, looped = 0, seen = 0;
    /* One loop per kind, so that reading a character is a load, not a switch. */
#define SCAN_UNITS(T)                                                                                       \
    do {                                                                                                    \
        const T *p = (const T *)data;                                                                       \
        Py_ssize_t start = begin, i = begin;                                                                \
        while (i <= length) {                                                                               \
            Py_ssize_t end = -1, next = 0;                                                                  \
            if (i == length) {                                                                              \
                end = i;                                                                                    \
                next = i + 1;                                                                               \
            }                                                                                               \
            else {                                                                                          \
                Py_UCS4 ch = p[i];                                                                          \
                if (ch == '\n') {                                                                           \
                    end = i;                                                                                \
                    next = i + 1;                                                                           \
                }                                                                                           \
                else if ((ch == '.' || ch == '!' || ch == '?') && i + 1 < length &&                         \
                         (p[i + 1] == ' ' || p[i + 1] == '\t')) {                                           \
                    end = i + 1; /* the stop stays with its sentence */                                     \
                    next = i + 2;                                                                           \
                    while (next < length && (p[next] == ' ' || p[next] == '\t')) {                          \
                        next++;                                                                             \
                    }                                                                                       \
                }                                                                                           \
            }                                                                                               \
            if (end < 0) {                                                                                  \
                i++;                                                                                        \
                continue;                                                                                   \
            }                                                                                               \
            Py_ssize_t a = start, b = end;                                                                  \
            while (a < b && Py_UNICODE_ISSPACE(p[a])) {                                                     \
                a++;                                                                                        \
            }                                                                                               \
            while (b > a && Py_UNICODE_ISSPACE(p[b - 1])) {                                                 \
                b--;                                                                                        \
            }                                                                                               \
            if (b > a) {                                                                                    \
                Py_ssize_t len = b - a;                                                                     \
                Py_uhash_t h = HASH_START;                                                                  \
                for (Py_ssize_t c = a; c < b; c++) {                                                        \
                    h = HASH_STEP(h, p[c]);                                                                 \
                }                                                                                           \
                h |= 1;                                                                                     \
                total += len;                                                                               \
                if (len > 3) {                                                                              \
                    Py_ssize_t first = period > 64 ? (seen > period ? seen - period : 0)                    \
                                                   : (seen > window ? seen - window : 0);                   \
                    for (Py_ssize_t k = first; k < seen; k++) {                                             \
                        const Unit *u = period > 64 ? &units[k] : &ring[k % 64];                            \
                        if (u->hash == h && u->len == len &&                                                \
                            memcmp(bytes + u->start * kind, bytes + a * kind, (size_t)(len * kind)) == 0) { \
                            looped += len;                                                                  \
                            break;                                                                          \
                        }                                                                                   \
                    }                                                                                       \
                }                                                                                           \
                Unit *slot = period > 64 ? &units[seen] : &ring[seen % 64];                                 \
                slot->start = a;                                                                            \
                slot->len = len;                                                                            \
                slot->hash = h;                                                                             \
                seen++;                                                                                     \
            }                                                                                               \
            start = i = next;                                                                               \
        }                                                                                                   \
    } while (0)
    if (kind == PyUnicode_1BYTE_KIND) {
        SCAN_UNITS(Py_UCS1);
    }
    else if (kind == PyUnicode_2BYTE_KIND) {
        SCAN_UNITS(Py_UCS2);
    }
    else {
        SCAN_UNITS(Py_UCS4);
    }
#undef SCAN_UNITS
    if (units != ring) {
        PyMem_Free(units);
    }
    out[0] = total;
    out[1] = looped;
    return 0;
}

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
    Py_ssize_t out[2];
    if (scan_units(args[0], 0, PyUnicode_GET_LENGTH(args[0]), period, out) < 0) {
        return NULL;
    }
    return Py_BuildValue("(nn)", out[0], out[1]);
}

PyDoc_STRVAR(may_loop_doc,
             "may_loop(text, cut, n, max_share, /)\n--\n\n"
             "(whole, tail): whether text, and text[cut:] when 0 < cut < len(text), may repeat itself by more\n"
             "than max_share in word n-grams or in units (FT309's bounds from word_stats and looped_units);\n"
             "n from 1 to 1,000,000, max_share from 0 to 1.");

/* FT309's bounds on text[start:length]: 1 when it may loop, 0 when it cannot, -1 with an exception set.
 * Every figure is below 2**53, so that the comparisons with doubles are exact, as Python's are. */
static int
may_repeat(PyObject *text, Py_ssize_t start, Py_ssize_t length, Py_ssize_t n, double max_share)
{
    Py_ssize_t stats[4];
    PieceSet set;
    set_init(&set);
    if (count_words(text, start, length, &set, stats) < 0) {
        set_free(&set);
        return -1;
    }
    Py_ssize_t words = stats[0], distinct = stats[1], chars = stats[3];
    if (words < 3 * n) {
        set_free(&set);
        return 0;
    }
    double limit = max_share * (double)words;
    if ((double)(words - distinct + n + 1) > limit) {
        /* the top counts only now: the first bound rules most texts out without them */
        Py_ssize_t top = top_counts(&set, n, words);
        if (top < 0) {
            set_free(&set);
            return -1;
        }
        if ((double)(top + 1) > limit) {
            set_free(&set);
            return 1;
        }
    }
    set_free(&set);
    if ((double)chars < (1.0 - max_share) * (double)(length - start) + 1.0) {
        Py_ssize_t units[2];
        if (scan_units(text, start, length, 8, units) < 0) {
            return -1;
        }
        return (double)units[1] / (double)(units[0] ? units[0] : 1) > max_share;
    }
    return 0;
}

static PyObject *
may_loop(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "may_loop() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    if (as_text(args[0], "may_loop") < 0) {
        return NULL;
    }
    Py_ssize_t cut = PyLong_AsSsize_t(args[1]);
    if (cut == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t n = PyLong_AsSsize_t(args[2]);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    double max_share = PyFloat_AsDouble(args[3]);
    if (max_share == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    if (n < 1 || n > 1000000 || !(max_share >= 0.0 && max_share <= 1.0)) {
        PyErr_SetString(PyExc_ValueError, "may_loop() expects n from 1 to 1,000,000 and max_share from 0 to 1");
        return NULL;
    }
    PyObject *text = args[0];
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    int whole = may_repeat(text, 0, length, n, max_share);
    if (whole < 0) {
        return NULL;
    }
    int tail = 0;
    if (cut > 0 && cut < length) {
        tail = may_repeat(text, cut, length, n, max_share);
        if (tail < 0) {
            return NULL;
        }
    }
    return Py_BuildValue("(OO)", whole ? Py_True : Py_False, tail ? Py_True : Py_False);
}

PyDoc_STRVAR(may_loop_at_end_doc,
             "may_loop_at_end(text, period, /)\n--\n\n"
             "False when the last period + 3 words of text cannot end in a loop of one to period words: the\n"
             "word before the last must occur among the period words before it, and some unit of p words must\n"
             "repeat its last two words p back, at the last word or the one before; period from 1 to 64.");

/* A word of the text: where it starts and its length, in code points. */
typedef struct {
    Py_ssize_t start;
    Py_ssize_t len;
} Word;

static int
same_word(int kind, const char *bytes, const Word *a, const Word *b)
{
    return a->len == b->len && memcmp(bytes + a->start * kind, bytes + b->start * kind, (size_t)(a->len * kind)) == 0;
}

static PyObject *
may_loop_at_end(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "may_loop_at_end() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (as_text(args[0], "may_loop_at_end") < 0) {
        return NULL;
    }
    Py_ssize_t period = PyLong_AsSsize_t(args[1]);
    if (period == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (period < 1 || period > 64) {
        PyErr_SetString(PyExc_ValueError, "may_loop_at_end() expects a period from 1 to 64");
        return NULL;
    }
    PyObject *text = args[0];
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    const char *bytes = (const char *)data;
    Py_ssize_t count = period + 3;
    /* the last count words, read backwards: found[0] is the last word */
    Word found[67];
    Py_ssize_t n = 0, i = PyUnicode_GET_LENGTH(text);
    while (n < count) {
        while (i > 0 && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i - 1))) {
            i--;
        }
        if (i == 0) {
            break;
        }
        Py_ssize_t end = i;
        while (i > 0 && !Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i - 1))) {
            i--;
        }
        found[n].start = i;
        found[n].len = end - i;
        n++;
    }
    if (n < 3) {
        Py_RETURN_FALSE;
    }
    /* words[k] of the Python definition (oldest first) is found[n - 1 - k] */
#define WORD(k) (&found[n - 1 - (k)])
    Py_ssize_t before = n - 2, first = n - 2 - period > 0 ? n - 2 - period : 0, k;
    for (k = first; k < before; k++) {
        if (same_word(kind, bytes, WORD(k), WORD(before))) {
            break;
        }
    }
    if (k == before) {
        Py_RETURN_FALSE;
    }
    Py_ssize_t last = n - 1;
    for (Py_ssize_t end = last; end >= last - 1; end--) {
        Py_ssize_t most = end - 1 < period ? end - 1 : period;
        for (Py_ssize_t p = 1; p <= most; p++) {
            if (same_word(kind, bytes, WORD(end), WORD(end - p)) &&
                same_word(kind, bytes, WORD(end - 1), WORD(end - 1 - p))) {
                Py_RETURN_TRUE;
            }
        }
    }
#undef WORD
    Py_RETURN_FALSE;
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

PyDoc_STRVAR(utf8_words_doc,
             "utf8_words(text, /)\n--\n\n"
             "' '.join(text.split()).encode('utf-8', 'surrogatepass'), in one pass.");

static PyObject *
utf8_words(PyObject *module, PyObject *arg)
{
    if (as_text(arg, "utf8_words") < 0) {
        return NULL;
    }
    int kind = PyUnicode_KIND(arg);
    const void *data = PyUnicode_DATA(arg);
    Py_ssize_t length = PyUnicode_GET_LENGTH(arg);
    /* at most 2, 3 or 4 bytes a character, by kind */
    Py_ssize_t most = kind == PyUnicode_1BYTE_KIND ? 2 : (kind == PyUnicode_2BYTE_KIND ? 3 : 4);
    if (length > PY_SSIZE_T_MAX / most) {
        return PyErr_NoMemory();
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, length * most);
    if (out == NULL) {
        return NULL;
    }
    unsigned char *w = (unsigned char *)PyBytes_AS_STRING(out);
    Py_ssize_t n = 0;
    int space = 0; /* a space is owed before the next word */
#define UTF8_WORDS(T)                                                              \
    do {                                                                           \
        const T *p = (const T *)data;                                              \
        for (Py_ssize_t i = 0; i < length; i++) {                                  \
            Py_UCS4 ch = p[i];                                                     \
            if (Py_UNICODE_ISSPACE(ch)) {                                          \
                space = n > 0;                                                     \
                continue;                                                          \
            }                                                                      \
            if (space) {                                                           \
                w[n++] = ' ';                                                      \
                space = 0;                                                         \
            }                                                                      \
            if (ch < 0x80) {                                                       \
                w[n++] = (unsigned char)ch;                                        \
            }                                                                      \
            else if (ch < 0x800) {                                                 \
                w[n++] = (unsigned char)(0xC0 | (ch >> 6));                        \
                w[n++] = (unsigned char)(0x80 | (ch & 0x3F));                      \
            }                                                                      \
            else if (ch < 0x10000) { /* lone surrogates too, as surrogatepass */   \
                w[n++] = (unsigned char)(0xE0 | (ch >> 12));                       \
                w[n++] = (unsigned char)(0x80 | ((ch >> 6) & 0x3F));               \
                w[n++] = (unsigned char)(0x80 | (ch & 0x3F));                      \
            }                                                                      \
            else {                                                                 \
                w[n++] = (unsigned char)(0xF0 | (ch >> 18));                       \
                w[n++] = (unsigned char)(0x80 | ((ch >> 12) & 0x3F));              \
                w[n++] = (unsigned char)(0x80 | ((ch >> 6) & 0x3F));               \
                w[n++] = (unsigned char)(0x80 | (ch & 0x3F));                      \
            }                                                                      \
        }                                                                          \
    } while (0)
    if (kind == PyUnicode_1BYTE_KIND) {
        UTF8_WORDS(Py_UCS1);
    }
    else if (kind == PyUnicode_2BYTE_KIND) {
        UTF8_WORDS(Py_UCS2);
    }
    else {
        UTF8_WORDS(Py_UCS4);
    }
#undef UTF8_WORDS
    if (n < length * most && _PyBytes_Resize(&out, n) < 0) {
        return NULL;
    }
    return out;
}

PyDoc_STRVAR(mojibake_hint_doc,
             "mojibake_hint(text, /)\n--\n\n"
             "Whether text holds a character of U+00C2-U+00F4 (a UTF-8 lead byte read as Latin-1) followed by\n"
             "one that a UTF-8 continuation byte becomes in Latin-1 or Windows-1252.");

/* What a UTF-8 continuation byte (0x80-0xBF) reads as in Latin-1 or Windows-1252. */
static int
continuation_read(Py_UCS4 c)
{
    if (c >= 0x80 && c <= 0xBF) {
        return 1;
    }
    switch (c) {
    case 0x152: case 0x153: case 0x160: case 0x161: case 0x178: case 0x17D: case 0x17E: case 0x192:
    case 0x2C6: case 0x2DC: case 0x2013: case 0x2014: case 0x2026: case 0x2030: case 0x2039: case 0x203A:
    case 0x20AC: case 0x2122:
        return 1;
    default:
        return (c >= 0x2018 && c <= 0x201E) || (c >= 0x2020 && c <= 0x2022);
    }
}

static PyObject *
mojibake_hint(PyObject *module, PyObject *arg)
{
    if (as_text(arg, "mojibake_hint") < 0) {
        return NULL;
    }
    int kind = PyUnicode_KIND(arg);
    const void *data = PyUnicode_DATA(arg);
    Py_ssize_t length = PyUnicode_GET_LENGTH(arg);
#define FIND_HINT(T)                                                              \
    do {                                                                          \
        const T *p = (const T *)data;                                             \
        for (Py_ssize_t i = 0; i + 1 < length; i++) {                             \
            if (p[i] >= 0xC2 && p[i] <= 0xF4 && continuation_read(p[i + 1])) {    \
                Py_RETURN_TRUE;                                                   \
            }                                                                     \
        }                                                                         \
    } while (0)
    if (kind == PyUnicode_1BYTE_KIND) {
        FIND_HINT(Py_UCS1);
    }
    else if (kind == PyUnicode_2BYTE_KIND) {
        FIND_HINT(Py_UCS2);
    }
    else {
        FIND_HINT(Py_UCS4);
    }
#undef FIND_HINT
    Py_RETURN_FALSE;
}

PyDoc_STRVAR(control_at_doc,
             "control_at(text, /)\n--\n\n"
             "The index of the first control character of text other than tab, newline and carriage return\n"
             "(U+0000-U+0008, U+000B, U+000C, U+000E-U+001F, U+007F-U+009F) or of a U+FEFF; -1 when there is none.");

static PyObject *
control_at(PyObject *module, PyObject *arg)
{
    if (as_text(arg, "control_at") < 0) {
        return NULL;
    }
    int kind = PyUnicode_KIND(arg);
    const void *data = PyUnicode_DATA(arg);
    Py_ssize_t length = PyUnicode_GET_LENGTH(arg);
    /* the C0 controls FT301 reports, as bits: all but tab, newline and carriage return */
    const uint32_t c0 = ~((1u << '\t') | (1u << '\n') | (1u << '\r'));
#define FIND_CONTROL(T)                                                                    \
    do {                                                                                   \
        const T *p = (const T *)data;                                                      \
        for (Py_ssize_t i = 0; i < length; i++) {                                          \
            Py_UCS4 ch = p[i];                                                             \
            if ((ch < 0x20 && ((c0 >> ch) & 1)) || (ch >= 0x7F && ch <= 0x9F) || ch == 0xFEFF) { \
                return PyLong_FromSsize_t(i);                                              \
            }                                                                              \
        }                                                                                  \
    } while (0)
    if (kind == PyUnicode_1BYTE_KIND) {
        FIND_CONTROL(Py_UCS1);
    }
    else if (kind == PyUnicode_2BYTE_KIND) {
        FIND_CONTROL(Py_UCS2);
    }
    else {
        FIND_CONTROL(Py_UCS4);
    }
#undef FIND_CONTROL
    return PyLong_FromLong(-1);
}

static PyMethodDef native_methods[] = {
    {"word_stats", (PyCFunction)(void (*)(void))word_stats, METH_FASTCALL, word_stats_doc},
    {"looped_units", (PyCFunction)(void (*)(void))looped_units, METH_FASTCALL, looped_units_doc},
    {"char_run", (PyCFunction)(void (*)(void))char_run, METH_FASTCALL, char_run_doc},
    {"ascii_words", (PyCFunction)(void (*)(void))ascii_words, METH_FASTCALL, ascii_words_doc},
    {"may_loop", (PyCFunction)(void (*)(void))may_loop, METH_FASTCALL, may_loop_doc},
    {"may_loop_at_end", (PyCFunction)(void (*)(void))may_loop_at_end, METH_FASTCALL, may_loop_at_end_doc},
    {"control_at", (PyCFunction)control_at, METH_O, control_at_doc},
    {"utf8_words", (PyCFunction)utf8_words, METH_O, utf8_words_doc},
    {"mojibake_hint", (PyCFunction)mojibake_hint, METH_O, mojibake_hint_doc},
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
    for (int c = 0; c < 256; c++) {
        latin1_space[c] = Py_UNICODE_ISSPACE((Py_UCS4)c) ? 1 : 0;
    }
    return PyModuleDef_Init(&native_module);
}
