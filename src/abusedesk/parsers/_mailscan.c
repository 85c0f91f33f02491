/* _mailscan: the reading of parsers/fastmime.py for the common shape of a feedback report, in C.
 *
 * parsers/fastmime.py (with arf.fast_view) is the reference: it reproduces what email.feedparser stores under
 * the compat32 policy, and tests/parsers/test_fastmime.py holds it to the standard library. This module does the
 * same reading in one pass over the bytes, so that a feedback report's header blocks cost a few microseconds
 * instead of a few hundred Python-level calls (issue 4: ARF intake at 10x IntelMQ). It answers only where its
 * answer is the reference's; everything else gives None and the caller takes the Python reader, which gives
 * None in turn where the standard library must decide. tests/parsers/test_mailscan.py holds the two readers to
 * the same answers on the corpus, the golden files and generated and mutated mails.
 *
 * Positions below are positions in the reference's text: "\n" + the mail (a leading mbox "From " line dropped),
 * one character per byte (the reference decodes ASCII with surrogateescape).
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>
#include <stddef.h>
#include <string.h>

typedef struct {
    const char *s; /* "\n" + the mail */
    Py_ssize_t n;
    const char *delim; /* "--" + boundary */
    Py_ssize_t dlen;
    int delim_has_colon;
    PyObject *fetch; /* compat32's header_fetch_parse, for a value with non-ASCII bytes */
} Mail;

/* a field name character: [!-9;-~] */
static inline int name_char(unsigned char c) { return (c >= '!' && c <= '9') || (c >= ';' && c <= '~'); }

/* what str.strip() drops from ASCII text */
static inline int py_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f); }

/* [!-9;-~]+: at pos, before end: the length of the name, or 0 */
static Py_ssize_t field_start(const char *s, Py_ssize_t pos, Py_ssize_t end) {
    Py_ssize_t i = pos;
    while (i < end && name_char((unsigned char)s[i])) i++;
    return (i > pos && i < end && s[i] == ':') ? i - pos : 0;
}

static int starts_with(const char *s, Py_ssize_t n, Py_ssize_t pos, const char *prefix, Py_ssize_t len) {
    return pos + len <= n && memcmp(s + pos, prefix, (size_t)len) == 0;
}

/* fastmime.read_block: the header block at start (up to end): its end (stop) and where the body begins.
 * 0 when the reference declines (a continuation line first, an mbox "From " line or a nameless field). */
static int read_block(const Mail *m, Py_ssize_t start, Py_ssize_t end, Py_ssize_t *stop_out, Py_ssize_t *body_out) {
    const char *s = m->s;
    Py_ssize_t stop = start;
    if (field_start(s, start, end)) {
        stop = end;
        const char *p = memchr(s + start, '\n', (size_t)(end - start));
        while (p != NULL) {
            Py_ssize_t i = p - s;
            if (!(i + 1 < end && (s[i + 1] == ' ' || s[i + 1] == '\t')) && !field_start(s, i + 1, end)) {
                stop = i + 1;
                break;
            }
            p = memchr(p + 1, '\n', (size_t)(end - i - 1));
        }
    }
    if (stop < end && (s[stop] == ' ' || s[stop] == '\t' || s[stop] == ':')) return 0;
    if (starts_with(s, end, stop, "From ", 5)) return 0;
    *stop_out = stop;
    if (stop < end && s[stop] == '\n')
        stop += 1;
    else if (starts_with(s, end, stop, "\r\n", 2))
        stop += 2;
    *body_out = stop;
    return 1;
}

/* The next field of a block [pos, stop): its name [*name, *colon) and value [*v, *e) as compat32 stores it (the
 * blanks after the colon and a final CR dropped); returns where the field after it starts. */
static Py_ssize_t next_field(const char *s, Py_ssize_t pos, Py_ssize_t stop, Py_ssize_t *colon, Py_ssize_t *v,
                             Py_ssize_t *e) {
    Py_ssize_t i = pos;
    while (i < stop && s[i] != ':') i++;
    *colon = i;
    i++;
    while (i < stop && (s[i] == ' ' || s[i] == '\t')) i++;
    *v = i;
    Py_ssize_t end = stop;
    const char *p = memchr(s + i, '\n', (size_t)(stop - i));
    while (p != NULL) {
        Py_ssize_t j = p - s;
        if (j + 1 < stop && (s[j + 1] == ' ' || s[j + 1] == '\t')) {
            p = memchr(p + 1, '\n', (size_t)(stop - j - 1));
            continue;
        }
        end = j;
        break;
    }
    Py_ssize_t next = end < stop ? end + 1 : stop;
    if (end > *v && s[end - 1] == '\r') end--;
    *e = end;
    return next;
}

static int is_ascii(const char *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80) return 0;
    return 1;
}

static int lower_equals(const char *s, Py_ssize_t n, const char *lower) {
    Py_ssize_t k = (Py_ssize_t)strlen(lower);
    if (n != k) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
        if (c != lower[i]) return 0;
    }
    return 1;
}

/* The first field called `lower` (any case) of the block [start, stop): 1 and its value span, or 0. */
static int find_field(const char *s, Py_ssize_t start, Py_ssize_t stop, const char *lower, Py_ssize_t *v,
                      Py_ssize_t *e) {
    Py_ssize_t pos = start, colon;
    while (pos < stop) {
        Py_ssize_t next = next_field(s, pos, stop, &colon, v, e);
        if (lower_equals(s + pos, colon - pos, lower)) return 1;
        pos = next;
    }
    return 0;
}

/* Multipart.next_delimiter: the first delimiter line from pos (a line start) on. */
static void next_delimiter(const Mail *m, Py_ssize_t pos, Py_ssize_t *at_out, Py_ssize_t *after_out, int *closing) {
    const char *s = m->s;
    Py_ssize_t n = m->n, dlen = m->dlen, at;
    if (starts_with(s, n, pos, m->delim, dlen)) {
        at = pos;
    } else {
        const char *f = pos < n ? memmem(s + pos, (size_t)(n - pos), m->delim - 1, (size_t)dlen + 1) : NULL;
        at = f == NULL ? 0 : (f - s) + 1;
    }
    while (at > 0) {
        Py_ssize_t t = at + dlen;
        for (int dashes = 1; dashes >= 0; dashes--) { /* (--)? tried with the dashes first, as the regex does */
            Py_ssize_t u = t;
            if (dashes) {
                if (!(u + 2 <= n && s[u] == '-' && s[u + 1] == '-')) continue;
                u += 2;
            }
            while (u < n && (s[u] == ' ' || s[u] == '\t')) u++;
            Py_ssize_t tail = -1;
            if (u == n)
                tail = u;
            else if (s[u] == '\n')
                tail = u + 1;
            else if (s[u] == '\r' && u + 1 < n && s[u + 1] == '\n')
                tail = u + 2;
            if (tail >= 0) {
                *at_out = at, *after_out = tail, *closing = dashes;
                return;
            }
        }
        Py_ssize_t from = at + dlen;
        const char *f = from < n ? memmem(s + from, (size_t)(n - from), m->delim - 1, (size_t)dlen + 1) : NULL;
        at = f == NULL ? 0 : (f - s) + 1;
    }
    *at_out = n, *after_out = n, *closing = 1;
}

/* Multipart.block: the header block at start, ending at a delimiter line if one comes first. */
static int part_block(const Mail *m, Py_ssize_t start, Py_ssize_t *stop, Py_ssize_t *body) {
    if (!read_block(m, start, m->n, stop, body)) return 0;
    if (m->delim_has_colon) {
        Py_ssize_t end, after;
        int closing;
        next_delimiter(m, start, &end, &after, &closing);
        if (end < *body) return read_block(m, start, end, stop, body);
    }
    return 1;
}

/* value.partition(";")[0].strip() of a value: its span [*i, *j) (compared below without regard to case) */
static void media_type(const char *s, Py_ssize_t v, Py_ssize_t e, Py_ssize_t *i_out, Py_ssize_t *j_out) {
    const char *semi = memchr(s + v, ';', (size_t)(e - v));
    Py_ssize_t i = v, j = semi == NULL ? e : semi - s;
    while (i < j && py_space((unsigned char)s[i])) i++;
    while (j > i && py_space((unsigned char)s[j - 1])) j--;
    *i_out = i, *j_out = j;
}

/* the first n characters of s, lower-cased, are `lower` */
static int lower_prefix(const char *s, Py_ssize_t n, const char *lower) {
    Py_ssize_t k = (Py_ssize_t)strlen(lower);
    return n >= k && lower_equals(s, k, lower);
}

static int count_char(const char *s, Py_ssize_t n, char c) {
    int count = 0;
    for (Py_ssize_t i = 0; i < n; i++) count += s[i] == c;
    return count;
}

/* fastmime.content_params, for the boundary only: 1 and the boundary's span (-1 when absent), 0 when the
 * reference declines the value. The value is ASCII here. */
static int boundary_param(const char *s, Py_ssize_t v, Py_ssize_t e, Py_ssize_t *b, Py_ssize_t *be) {
    if (memchr(s + v, '\\', (size_t)(e - v)) != NULL) return 0;
    *b = -1;
    Py_ssize_t seg = v, first = 1;
    while (seg <= e) {
        const char *semi = memchr(s + seg, ';', (size_t)(e - seg));
        Py_ssize_t seg_end = semi == NULL ? e : semi - s;
        if (count_char(s + seg, seg_end - seg, '"') % 2) return 0;
        const char *eq = memchr(s + seg, '=', (size_t)(seg_end - seg));
        if (first) {
            if (eq != NULL) return 0;
            first = 0;
        } else {
            Py_ssize_t ns = seg, ne = eq == NULL ? seg_end : eq - s;
            if (memchr(s + ns, '*', (size_t)(ne - ns)) != NULL) return 0;
            while (ns < ne && py_space((unsigned char)s[ns])) ns++;
            while (ne > ns && py_space((unsigned char)s[ne - 1])) ne--;
            if (*b < 0 && lower_equals(s + ns, ne - ns, "boundary")) {
                Py_ssize_t vs = seg_end, ve = seg_end;
                if (eq != NULL) {
                    vs = eq - s + 1;
                    while (vs < ve && py_space((unsigned char)s[vs])) vs++;
                    while (ve > vs && py_space((unsigned char)s[ve - 1])) ve--;
                    if (ve - vs > 1 && ((s[vs] == '"' && s[ve - 1] == '"') || (s[vs] == '<' && s[ve - 1] == '>')))
                        vs++, ve--;
                }
                *b = vs, *be = ve;
            }
        }
        seg = seg_end + 1;
    }
    return 1;
}

/* RFC 2046 bchars without the space, 1 to 200 of them */
static int boundary_ok(const char *s, Py_ssize_t n) {
    if (n < 1 || n > 200) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || strchr("'()+_,-./:=?", c)))
            return 0;
        if (c == 0) return 0;
    }
    return 1;
}

/* A value as Message.get returns it under compat32: the text, or fetch(name, text) when it has non-ASCII bytes */
static PyObject *stored(const char *s, PyObject *fetch, Py_ssize_t name, Py_ssize_t colon, Py_ssize_t v,
                        Py_ssize_t e) {
    if (is_ascii(s + v, e - v)) return PyUnicode_DecodeASCII(s + v, e - v, NULL);
    PyObject *value = PyUnicode_DecodeASCII(s + v, e - v, "surrogateescape");
    if (value == NULL) return NULL;
    PyObject *key = PyUnicode_DecodeASCII(s + name, colon - name, NULL);
    if (key == NULL) {
        Py_DECREF(value);
        return NULL;
    }
    PyObject *out = PyObject_CallFunctionObjArgs(fetch, key, value, NULL);
    Py_DECREF(key);
    Py_DECREF(value);
    return out;
}

/* HeaderBlock.mapping() of the block [start, stop): lower-case name -> values in order */
static PyObject *index_block(const Mail *m, Py_ssize_t start, Py_ssize_t stop) {
    const char *s = m->s;
    PyObject *index = PyDict_New();
    if (index == NULL) return NULL;
    Py_ssize_t pos = start, colon, v, e;
    char small[64];
    while (pos < stop) {
        Py_ssize_t next = next_field(s, pos, stop, &colon, &v, &e);
        Py_ssize_t len = colon - pos;
        char *lower = len <= (Py_ssize_t)sizeof small ? small : PyMem_Malloc((size_t)len);
        if (lower == NULL) goto fail;
        for (Py_ssize_t k = 0; k < len; k++) {
            char c = s[pos + k];
            lower[k] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
        PyObject *key = PyUnicode_DecodeASCII(lower, len, NULL);
        if (lower != small) PyMem_Free(lower);
        if (key == NULL) goto fail;
        PyObject *value = stored(s, m->fetch, pos, colon, v, e);
        if (value == NULL) {
            Py_DECREF(key);
            goto fail;
        }
        PyObject *values = PyDict_GetItemWithError(index, key);
        int rc;
        if (values != NULL) {
            rc = PyList_Append(values, value);
        } else if (PyErr_Occurred()) {
            rc = -1;
        } else {
            values = PyList_New(1);
            if (values == NULL) {
                rc = -1;
            } else {
                Py_INCREF(value);
                PyList_SET_ITEM(values, 0, value);
                rc = PyDict_SetItem(index, key, values);
                Py_DECREF(values);
            }
        }
        Py_DECREF(key);
        Py_DECREF(value);
        if (rc < 0) goto fail;
        pos = next;
    }
    return index;
fail:
    Py_DECREF(index);
    return NULL;
}

/* ------------------------------------------------------------------------------------------------ Fields */

/* One field of a block: its name [name, colon) and stored value [v, e) in the text. */
typedef struct {
    Py_ssize_t name, colon, v, e;
} Span;

/* A header block read like a compat32 Message (get, get_all, items, `in`), its values made only when asked for:
 * a feedback report's top and attached blocks carry dozens of fields, of which the parser reads a handful. */
typedef struct {
    PyObject_VAR_HEAD
    PyObject *text;  /* bytes: "\n" + the mail */
    PyObject *fetch; /* compat32's header_fetch_parse */
    PyObject *index; /* mapping(), made on first use */
    Py_ssize_t start, stop; /* the block in the text */
    Span spans[1];
} FieldsObject;

static PyTypeObject FieldsType;

static PyObject *fields_new(PyObject *text, PyObject *fetch, Py_ssize_t start, Py_ssize_t stop) {
    const char *s = PyBytes_AS_STRING(text);
    Py_ssize_t count = 0, pos = start, colon, v, e;
    while (pos < stop) pos = next_field(s, pos, stop, &colon, &v, &e), count++;
    FieldsObject *self = PyObject_NewVar(FieldsObject, &FieldsType, count);
    if (self == NULL) return NULL;
    self->text = Py_NewRef(text), self->fetch = Py_NewRef(fetch), self->index = NULL;
    self->start = start, self->stop = stop;
    pos = start;
    for (Py_ssize_t i = 0; i < count; i++) {
        Span *span = &self->spans[i];
        span->name = pos;
        pos = next_field(s, pos, stop, &span->colon, &span->v, &span->e);
    }
    return (PyObject *)self;
}

static void fields_dealloc(FieldsObject *self) {
    Py_DECREF(self->text);
    Py_DECREF(self->fetch);
    Py_XDECREF(self->index);
    PyObject_Free(self);
}

/* the field name of span i is `name` (ASCII, any case) */
static int span_is(const FieldsObject *self, const Span *span, const char *name, Py_ssize_t len) {
    if (span->colon - span->name != len) return 0;
    const char *s = PyBytes_AS_STRING(self->text) + span->name;
    for (Py_ssize_t k = 0; k < len; k++) {
        char a = s[k], b = name[k];
        if (a >= 'A' && a <= 'Z') a = (char)(a + 32);
        if (b >= 'A' && b <= 'Z') b = (char)(b + 32);
        if (a != b) return 0;
    }
    return 1;
}

static PyObject *span_value(const FieldsObject *self, const Span *span) {
    return stored(PyBytes_AS_STRING(self->text), self->fetch, span->name, span->colon, span->v, span->e);
}

/* the name asked for, as ASCII bytes; NULL (no error set) for a name no field can have */
static const char *asked_name(PyObject *name, Py_ssize_t *len) {
    if (!PyUnicode_Check(name)) {
        PyErr_Format(PyExc_TypeError, "a field name is a str, not %.100s", Py_TYPE(name)->tp_name);
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(name)) return NULL;
    *len = PyUnicode_GET_LENGTH(name);
    return (const char *)PyUnicode_DATA(name);
}

/* (name, failobj=None) of get and get_all, failobj also by keyword (mime.received_lines passes it so) */
static int get_args(const char *what, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **name,
                    PyObject **failobj) {
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    *failobj = Py_None;
    if (nargs + nkw < 1 || nargs + nkw > 2 || nargs < 1) goto usage;
    *name = args[0];
    if (nargs == 2) *failobj = args[1];
    if (nkw == 1) {
        if (!PyUnicode_Check(PyTuple_GET_ITEM(kwnames, 0)) ||
            PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "failobj") != 0)
            goto usage;
        *failobj = args[nargs];
    }
    return 1;
usage:
    PyErr_Format(PyExc_TypeError, "%s(name, failobj=None)", what);
    return 0;
}

static PyObject *fields_get(FieldsObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *key, *failobj;
    if (!get_args("get", args, nargs, kwnames, &key, &failobj)) return NULL;
    Py_ssize_t len = 0;
    const char *name = asked_name(key, &len);
    if (name == NULL && PyErr_Occurred()) return NULL;
    if (name != NULL)
        for (Py_ssize_t i = 0; i < Py_SIZE(self); i++)
            if (span_is(self, &self->spans[i], name, len)) return span_value(self, &self->spans[i]);
    return Py_NewRef(failobj);
}

static PyObject *fields_get_all(FieldsObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *key, *failobj;
    if (!get_args("get_all", args, nargs, kwnames, &key, &failobj)) return NULL;
    Py_ssize_t len = 0;
    const char *name = asked_name(key, &len);
    if (name == NULL && PyErr_Occurred()) return NULL;
    PyObject *out = NULL;
    for (Py_ssize_t i = 0; name != NULL && i < Py_SIZE(self); i++) {
        if (!span_is(self, &self->spans[i], name, len)) continue;
        if (out == NULL && (out = PyList_New(0)) == NULL) return NULL;
        PyObject *value = span_value(self, &self->spans[i]);
        if (value == NULL || PyList_Append(out, value) < 0) {
            Py_XDECREF(value);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(value);
    }
    return out != NULL ? out : Py_NewRef(failobj);
}

static PyObject *fields_items(FieldsObject *self, PyObject *Py_UNUSED(ignored)) {
    const char *s = PyBytes_AS_STRING(self->text);
    PyObject *out = PyList_New(Py_SIZE(self));
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < Py_SIZE(self); i++) {
        const Span *span = &self->spans[i];
        PyObject *name = PyUnicode_DecodeASCII(s + span->name, span->colon - span->name, NULL);
        PyObject *value = name == NULL ? NULL : span_value(self, span);
        PyObject *item = value == NULL ? NULL : PyTuple_Pack(2, name, value);
        Py_XDECREF(name);
        Py_XDECREF(value);
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, item);
    }
    return out;
}

static PyObject *index_block(const Mail *m, Py_ssize_t start, Py_ssize_t stop);

static PyObject *fields_mapping(FieldsObject *self, PyObject *Py_UNUSED(ignored)) {
    if (self->index == NULL) {
        Mail m = {PyBytes_AS_STRING(self->text), PyBytes_GET_SIZE(self->text), NULL, 0, 0, self->fetch};
        self->index = index_block(&m, self->start, self->stop);
        if (self->index == NULL) return NULL;
    }
    return Py_NewRef(self->index);
}

static int fields_contains(FieldsObject *self, PyObject *key) {
    Py_ssize_t len = 0;
    const char *name = asked_name(key, &len);
    if (name == NULL) return PyErr_Occurred() ? -1 : 0;
    for (Py_ssize_t i = 0; i < Py_SIZE(self); i++)
        if (span_is(self, &self->spans[i], name, len)) return 1;
    return 0;
}

static PyMethodDef fields_methods[] = {
    {"get", (PyCFunction)(void (*)(void))fields_get, METH_FASTCALL | METH_KEYWORDS,
     "The first field of that name (any case) as Message.get returns it under compat32; failobj if absent."},
    {"get_all", (PyCFunction)(void (*)(void))fields_get_all, METH_FASTCALL | METH_KEYWORDS,
     "Every field of that name (any case), in order, as Message.get_all returns them; failobj if none."},
    {"items", (PyCFunction)fields_items, METH_NOARGS, "Every field as (name, value), in order."},
    {"mapping", (PyCFunction)fields_mapping, METH_NOARGS,
     "Lower-case name -> every value of that name, in order (made once; do not change it)."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods fields_as_sequence = {
    .sq_contains = (objobjproc)fields_contains,
};

static PyTypeObject FieldsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "abusedesk.parsers._mailscan.Fields",
    .tp_doc = "A header block read like a compat32 Message; values are made when asked for.",
    .tp_basicsize = offsetof(FieldsObject, spans),
    .tp_itemsize = sizeof(Span),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)fields_dealloc,
    .tp_methods = fields_methods,
    .tp_as_sequence = &fields_as_sequence,
};

/* ------------------------------------------------------------------------------------------------ reports */

enum { OTHER, FEEDBACK, MESSAGE, HEADERS_PART, REFUSED };

/* how arf.fast_view treats a part's media type t (as written; fastmime lower-cases it) */
static int part_kind(const char *t, Py_ssize_t n) {
    if (lower_equals(t, n, "message/feedback-report")) return FEEDBACK;
    if (lower_equals(t, n, "message/rfc822") || lower_equals(t, n, "message/global")) return MESSAGE;
    if (lower_equals(t, n, "text/rfc822-headers") || lower_equals(t, n, "text/rfc822-header")) return HEADERS_PART;
    if (lower_prefix(t, n, "multipart/") || lower_prefix(t, n, "message/")) return REFUSED;
    return OTHER;
}

static void release(PyObject *a, PyObject *b, PyObject *c, PyObject *text) {
    Py_XDECREF(a);
    Py_XDECREF(b);
    Py_XDECREF(c);
    Py_DECREF(text);
}

/* arf.fast_view on the bytes, as far as the fields go: (top, feedback fields, attached message's fields or None),
 * the feedback fields a mapping of lower-case name -> values in order (the parser reads nearly all of them), the
 * others Fields; None where the reference would not give the same. */
static PyObject *feedback_report(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "feedback_report(data: bytes, fetch) takes the mail's bytes and a callable");
        return NULL;
    }
    const char *data = PyBytes_AS_STRING(args[0]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    if (size >= 5 && memcmp(data, "From ", 5) == 0) { /* data.split(b"\n", 1)[-1] */
        const char *nl = memchr(data, '\n', (size_t)size);
        if (nl != NULL) size -= (nl + 1 - data), data = nl + 1;
    }
    /* a lone CR ends a line for the feed parser, not for the reference */
    for (const char *cr = memchr(data, '\r', (size_t)size); cr != NULL;
         cr = memchr(cr + 1, '\r', (size_t)(size - (cr + 1 - data)))) {
        if (cr + 1 == data + size || cr[1] != '\n') Py_RETURN_NONE;
    }
    PyObject *text = PyBytes_FromStringAndSize(NULL, size + 1);
    if (text == NULL) return NULL;
    char *buf = PyBytes_AS_STRING(text);
    buf[0] = '\n';
    memcpy(buf + 1, data, (size_t)size);
    Mail m = {buf, size + 1, NULL, 0, 0, args[1]};
    const char *s = buf;
    PyObject *top = NULL, *fields = NULL, *original = NULL;
    char delim[3 + 200]; /* "\n--" + boundary; m.delim points after the "\n" */
    Py_ssize_t top_stop, pos, v, e, b, be, ti, tj, at, after, first, stop, body, end;
    int closing;

    /* fastmime.read_multipart */
    if (!read_block(&m, 1, m.n, &top_stop, &pos)) goto decline;
    if (!find_field(s, 1, top_stop, "content-type", &v, &e) || !is_ascii(s + v, e - v)) goto decline;
    media_type(s, v, e, &ti, &tj);
    if (!lower_prefix(s + ti, tj - ti, "multipart/") || count_char(s + ti, tj - ti, '/') != 1) goto decline;
    if (lower_equals(s + ti, tj - ti, "multipart/signed") || lower_equals(s + ti, tj - ti, "multipart/digest"))
        goto decline; /* arf.fast_view leaves these to the standard library */
    if (!boundary_param(s, v, e, &b, &be) || b < 0 || !boundary_ok(s + b, be - b)) goto decline;
    delim[0] = '\n', delim[1] = '-', delim[2] = '-';
    memcpy(delim + 3, s + b, (size_t)(be - b));
    m.delim = delim + 1, m.dlen = be - b + 2;
    m.delim_has_colon = memchr(s + b, ':', (size_t)(be - b)) != NULL;
    next_delimiter(&m, pos, &at, &first, &closing);
    if (closing) goto decline; /* no delimiter, or the close delimiter first */

    /* Multipart.parts, and the loop of arf.fast_view over them */
    Py_ssize_t feedback = -1, attached = -1;
    int attached_kind = OTHER;
    at = first;
    for (;;) {
        if (!part_block(&m, at, &stop, &body)) goto decline;
        if (at == body) {
            next_delimiter(&m, at, &end, &after, &closing);
            if (end == at) goto decline; /* two delimiters in a row */
        }
        int kind = OTHER; /* text/plain when there is no Content-Type, or a type without exactly one slash */
        if (stop > at && find_field(s, at, stop, "content-type", &v, &e)) {
            if (!is_ascii(s + v, e - v)) goto decline;
            media_type(s, v, e, &ti, &tj);
            if (count_char(s + ti, tj - ti, '/') == 1) kind = part_kind(s + ti, tj - ti);
        }
        if (kind == REFUSED) goto decline; /* a walk would descend into it */
        if (kind == FEEDBACK && feedback < 0) feedback = body;
        if (attached < 0 && (kind == MESSAGE || kind == HEADERS_PART)) attached = body, attached_kind = kind;
        if (feedback >= 0 && attached >= 0) break;
        next_delimiter(&m, body, &end, &after, &closing);
        if (closing) break;
        at = after;
    }
    if (feedback < 0 || attached_kind == HEADERS_PART) goto decline; /* the latter: decoded by the Python reader */

    if (!part_block(&m, feedback, &stop, &body)) goto decline;
    fields = index_block(&m, feedback, stop);
    if (fields == NULL) goto error;
    static PyObject *content_type = NULL;
    if (content_type == NULL && (content_type = PyUnicode_InternFromString("content-type")) == NULL) goto error;
    int typed = PyDict_Contains(fields, content_type);
    if (typed < 0) goto error;
    if (typed) goto decline; /* the standard library reads such a fields block as a typed part of its own */
    if (attached >= 0) {
        if (!part_block(&m, attached, &stop, &body)) goto decline;
        original = fields_new(text, m.fetch, attached, stop);
    } else {
        original = Py_NewRef(Py_None);
    }
    if (original == NULL) goto error;
    top = fields_new(text, m.fetch, 1, top_stop);
    if (top == NULL) goto error;
    PyObject *out = PyTuple_Pack(3, top, fields, original);
    release(top, fields, original, text);
    return out;

decline:
    release(top, fields, original, text);
    Py_RETURN_NONE;
error:
    release(top, fields, original, text);
    return NULL;
}

static PyMethodDef methods[] = {
    {"feedback_report", (PyCFunction)(void (*)(void))feedback_report, METH_FASTCALL,
     "feedback_report(data, fetch) -> (top, fields, original) | None: arf.fast_view's reading of the bytes, in C"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_mailscan",
    .m_doc = "The header blocks of a feedback report, read as parsers/fastmime.py reads them (see _mailscan.c).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__mailscan(void) {
    if (PyType_Ready(&FieldsType) < 0) return NULL;
    PyObject *mod = PyModule_Create(&module);
    if (mod == NULL) return NULL;
    if (PyModule_AddObjectRef(mod, "Fields", (PyObject *)&FieldsType) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
