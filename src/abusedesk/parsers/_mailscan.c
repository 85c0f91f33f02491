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

/* The reference's text ("\n" + the mail after its mbox line) without copying the mail: position p of the text is
 * byte p - 1 of the mail after skip bytes. Position 0 (the "\n") is never read; the pointer is formed within the
 * bytes object, so it stays inside the object even when skip is 0. */
static const char *text_of(PyObject *data, Py_ssize_t skip) {
    return (const char *)data + offsetof(PyBytesObject, ob_sval) + skip - 1;
}

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

/* One field of a block: its name [name, colon) and stored value [v, e) in the text. */
typedef struct {
    Py_ssize_t name, colon, v, e;
} Span;

/* The fields of one block as it is read: on the stack up to 64, on the heap beyond. */
typedef struct {
    Span *items;
    Py_ssize_t count, cap;
    Span local[64];
} Spans;

static void spans_init(Spans *sp) { sp->items = sp->local, sp->count = 0, sp->cap = 64; }

static void spans_free(Spans *sp) {
    if (sp->items != sp->local) PyMem_Free(sp->items);
    spans_init(sp);
}

static int spans_push(Spans *sp, const Span *span) {
    if (sp->count == sp->cap) {
        Py_ssize_t cap = sp->cap * 2;
        Span *items = PyMem_Malloc((size_t)cap * sizeof(Span));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(items, sp->items, (size_t)sp->count * sizeof(Span));
        if (sp->items != sp->local) PyMem_Free(sp->items);
        sp->items = items, sp->cap = cap;
    }
    sp->items[sp->count++] = *span;
    return 0;
}

/* fastmime.read_block, with the fields of the block (fastmime's _FIELDS) read on the way: the block at start (up
 * to end) is the run of lines that are a field start ("name:") or a continuation, from a field start on; each
 * field's value runs over its continuation lines, and the block stops at the first line after a value that does
 * not start a field. Gives the block's end (stop) and where the body begins: 1; 0 where the reference declines
 * (a continuation line first, an mbox "From " line or a nameless field), -1 on an error (no memory). */
static int scan_block(const char *s, Py_ssize_t start, Py_ssize_t end, Spans *sp, Py_ssize_t *stop_out,
                      Py_ssize_t *body_out) {
    Py_ssize_t pos = start, len;
    sp->count = 0;
    while ((len = field_start(s, pos, end)) > 0) {
        Span span;
        span.name = pos, span.colon = pos + len;
        Py_ssize_t i = span.colon + 1;
        while (i < end && (s[i] == ' ' || s[i] == '\t')) i++;
        span.v = i;
        Py_ssize_t e = end;
        const char *p = memchr(s + i, '\n', (size_t)(end - i));
        while (p != NULL) {
            Py_ssize_t j = p - s;
            if (j + 1 < end && (s[j + 1] == ' ' || s[j + 1] == '\t')) {
                p = memchr(p + 1, '\n', (size_t)(end - j - 1));
                continue;
            }
            e = j;
            break;
        }
        pos = e < end ? e + 1 : end;
        if (e > span.v && s[e - 1] == '\r') e--;
        span.e = e;
        if (spans_push(sp, &span) < 0) return -1;
    }
    Py_ssize_t stop = pos;
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

/* The first field called `lower` (any case) of a block: its span, or NULL. */
static const Span *find_span(const char *s, const Spans *sp, const char *lower) {
    for (Py_ssize_t i = 0; i < sp->count; i++)
        if (lower_equals(s + sp->items[i].name, sp->items[i].colon - sp->items[i].name, lower)) return &sp->items[i];
    return NULL;
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

/* Multipart.block: the header block at start, ending at a delimiter line if one comes first (scan_block's
 * answers). Read up to the end of the text: a delimiter line ends a block anyway, being no field, unless the
 * boundary has a colon ("--a:b" has the shape of a field); only then is the next delimiter looked for. */
static int part_block(const Mail *m, Py_ssize_t start, Spans *sp, Py_ssize_t *stop, Py_ssize_t *body) {
    int found = scan_block(m->s, start, m->n, sp, stop, body);
    if (found == 1 && m->delim_has_colon) {
        Py_ssize_t end, after;
        int closing;
        next_delimiter(m, start, &end, &after, &closing);
        if (end < *body) return scan_block(m->s, start, end, sp, stop, body);
    }
    return found;
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

/* HeaderBlock.mapping() of a block's fields: lower-case name -> values in order */
static PyObject *index_spans(const char *s, PyObject *fetch, const Span *spans, Py_ssize_t count) {
    PyObject *index = PyDict_New();
    if (index == NULL) return NULL;
    char small[64];
    for (Py_ssize_t i = 0; i < count; i++) {
        const Span *span = &spans[i];
        Py_ssize_t len = span->colon - span->name;
        char *lower = len <= (Py_ssize_t)sizeof small ? small : PyMem_Malloc((size_t)len);
        if (lower == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        for (Py_ssize_t k = 0; k < len; k++) {
            char c = s[span->name + k];
            lower[k] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
        PyObject *key = PyUnicode_DecodeASCII(lower, len, NULL);
        if (lower != small) PyMem_Free(lower);
        if (key == NULL) goto fail;
        PyObject *value = stored(s, fetch, span->name, span->colon, span->v, span->e);
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
    }
    return index;
fail:
    Py_DECREF(index);
    return NULL;
}

/* ------------------------------------------------------------------------------------------------ Fields */

/* A header block read like a compat32 Message (get, get_all, items, `in`), its values made only when asked for:
 * a feedback report's top and attached blocks carry dozens of fields, of which the parser reads a handful. */
typedef struct {
    PyObject_VAR_HEAD
    PyObject *data;  /* the mail's bytes, which the text is read from (see text_of) */
    Py_ssize_t skip; /* the mbox "From " line's length */
    PyObject *fetch; /* compat32's header_fetch_parse */
    PyObject *index; /* mapping(), made on first use */
    Span spans[1];
} FieldsObject;

static PyTypeObject FieldsType;

static PyObject *fields_new(PyObject *data, Py_ssize_t skip, PyObject *fetch, const Spans *sp) {
    FieldsObject *self = PyObject_NewVar(FieldsObject, &FieldsType, sp->count);
    if (self == NULL) return NULL;
    self->data = Py_NewRef(data), self->skip = skip, self->fetch = Py_NewRef(fetch), self->index = NULL;
    memcpy(self->spans, sp->items, (size_t)sp->count * sizeof(Span));
    return (PyObject *)self;
}

static void fields_dealloc(FieldsObject *self) {
    Py_DECREF(self->data);
    Py_DECREF(self->fetch);
    Py_XDECREF(self->index);
    PyObject_Free(self);
}

/* the field name of span i is `name` (ASCII, any case) */
static int span_is(const FieldsObject *self, const Span *span, const char *name, Py_ssize_t len) {
    if (span->colon - span->name != len) return 0;
    const char *s = text_of(self->data, self->skip) + span->name;
    for (Py_ssize_t k = 0; k < len; k++) {
        char a = s[k], b = name[k];
        if (a >= 'A' && a <= 'Z') a = (char)(a + 32);
        if (b >= 'A' && b <= 'Z') b = (char)(b + 32);
        if (a != b) return 0;
    }
    return 1;
}

static PyObject *span_value(const FieldsObject *self, const Span *span) {
    return stored(text_of(self->data, self->skip), self->fetch, span->name, span->colon, span->v, span->e);
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

/* The (name, failobj=None) of get and get_all, failobj also by keyword (mime.received_lines passes it so): 1 with
 * the name as ASCII bytes (NULL for a name no field can have) and failobj; 0 with an error set. */
static int get_args(const char *what, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char **name,
                    Py_ssize_t *len, PyObject **failobj) {
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    *failobj = Py_None;
    if (nargs + nkw < 1 || nargs + nkw > 2 || nargs < 1) goto usage;
    if (nargs == 2) *failobj = args[1];
    if (nkw == 1) {
        if (!PyUnicode_Check(PyTuple_GET_ITEM(kwnames, 0)) ||
            PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "failobj") != 0)
            goto usage;
        *failobj = args[nargs];
    }
    *name = asked_name(args[0], len);
    return *name != NULL || !PyErr_Occurred();
usage:
    PyErr_Format(PyExc_TypeError, "%s(name, failobj=None)", what);
    return 0;
}

static PyObject *fields_get(FieldsObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    const char *name;
    Py_ssize_t len = 0;
    PyObject *failobj;
    if (!get_args("get", args, nargs, kwnames, &name, &len, &failobj)) return NULL;
    for (Py_ssize_t i = 0; name != NULL && i < Py_SIZE(self); i++)
        if (span_is(self, &self->spans[i], name, len)) return span_value(self, &self->spans[i]);
    return Py_NewRef(failobj);
}

static PyObject *fields_get_all(FieldsObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    const char *name;
    Py_ssize_t len = 0;
    PyObject *failobj;
    if (!get_args("get_all", args, nargs, kwnames, &name, &len, &failobj)) return NULL;
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
    const char *s = text_of(self->data, self->skip);
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

static PyObject *fields_mapping(FieldsObject *self, PyObject *Py_UNUSED(ignored)) {
    if (self->index == NULL) {
        self->index = index_spans(text_of(self->data, self->skip), self->fetch, self->spans, Py_SIZE(self));
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

/* arf.transfer_encoding(value) in _IDENTITY_ENCODINGS: no field, or one that leaves the text as it is */
static int identity_encoding(const char *s, const Span *cte) {
    if (cte == NULL) return 1;
    Py_ssize_t i = cte->v, j = cte->e;
    if (!is_ascii(s + i, j - i)) return 0;
    while (i < j && py_space((unsigned char)s[i])) i++;
    while (j > i && py_space((unsigned char)s[j - 1])) j--;
    return j == i || lower_equals(s + i, j - i, "7bit") || lower_equals(s + i, j - i, "8bit") ||
           lower_equals(s + i, j - i, "binary");
}

enum { OTHER, FEEDBACK, MESSAGE, HEADERS_PART, REFUSED };

/* how arf.fast_view treats a part's media type t (as written; fastmime lower-cases it) */
static int part_kind(const char *t, Py_ssize_t n) {
    if (lower_equals(t, n, "message/feedback-report")) return FEEDBACK;
    if (lower_equals(t, n, "message/rfc822") || lower_equals(t, n, "message/global")) return MESSAGE;
    if (lower_equals(t, n, "text/rfc822-headers") || lower_equals(t, n, "text/rfc822-header")) return HEADERS_PART;
    if (lower_prefix(t, n, "multipart/") || lower_prefix(t, n, "message/")) return REFUSED;
    return OTHER;
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
    PyObject *data = args[0], *fetch = args[1];
    const char *bytes = PyBytes_AS_STRING(data);
    Py_ssize_t size = PyBytes_GET_SIZE(data), skip = 0;
    if (size >= 5 && memcmp(bytes, "From ", 5) == 0) { /* data.split(b"\n", 1)[-1] */
        const char *nl = memchr(bytes, '\n', (size_t)size);
        if (nl != NULL) skip = nl + 1 - bytes;
    }
    /* a lone CR ends a line for the feed parser, not for the reference */
    const char *last = bytes + size;
    for (const char *cr = memchr(bytes + skip, '\r', (size_t)(size - skip)); cr != NULL;
         cr = memchr(cr + 1, '\r', (size_t)(last - cr - 1))) {
        if (cr + 1 == last || cr[1] != '\n') Py_RETURN_NONE;
    }
    const char *s = text_of(data, skip);
    Mail m = {s, size - skip + 1, NULL, 0, 0, fetch};
    PyObject *top = NULL, *fields = NULL, *original = NULL, *out = NULL;
    Spans top_spans, spans;
    spans_init(&top_spans), spans_init(&spans);
    char delim[3 + 200]; /* "\n--" + boundary; m.delim points after the "\n" */
    const Span *ct;
    Py_ssize_t top_stop, pos, b, be, ti, tj, at, after, first, stop, body, end;
    int closing, found;
#define READ(call)                     \
    do {                               \
        if ((found = (call)) < 0) goto done; \
        if (found == 0) goto decline;  \
    } while (0)

    /* fastmime.read_multipart */
    READ(scan_block(s, 1, m.n, &top_spans, &top_stop, &pos));
    ct = find_span(s, &top_spans, "content-type");
    if (ct == NULL || !is_ascii(s + ct->v, ct->e - ct->v)) goto decline;
    media_type(s, ct->v, ct->e, &ti, &tj);
    if (!lower_prefix(s + ti, tj - ti, "multipart/") || count_char(s + ti, tj - ti, '/') != 1) goto decline;
    if (lower_equals(s + ti, tj - ti, "multipart/signed") || lower_equals(s + ti, tj - ti, "multipart/digest"))
        goto decline; /* arf.fast_view leaves these to the standard library */
    if (!boundary_param(s, ct->v, ct->e, &b, &be) || b < 0 || !boundary_ok(s + b, be - b)) goto decline;
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
        READ(part_block(&m, at, &spans, &stop, &body));
        if (at == body) {
            next_delimiter(&m, at, &end, &after, &closing);
            if (end == at) goto decline; /* two delimiters in a row */
        }
        int kind = OTHER; /* text/plain when there is no Content-Type, or a type without exactly one slash */
        if ((ct = find_span(s, &spans, "content-type")) != NULL) {
            if (!is_ascii(s + ct->v, ct->e - ct->v)) goto decline;
            media_type(s, ct->v, ct->e, &ti, &tj);
            if (count_char(s + ti, tj - ti, '/') == 1) kind = part_kind(s + ti, tj - ti);
        }
        if (kind == REFUSED) goto decline; /* a walk would descend into it */
        if (kind == FEEDBACK && feedback < 0) {
            if (!identity_encoding(s, find_span(s, &spans, "content-transfer-encoding")))
                goto decline; /* encoded fields: arf.feedback_fields decodes them */
            feedback = body;
        }
        if (attached < 0 && (kind == MESSAGE || kind == HEADERS_PART)) attached = body, attached_kind = kind;
        if (feedback >= 0 && attached >= 0) break;
        next_delimiter(&m, body, &end, &after, &closing);
        if (closing) break;
        at = after;
    }
    if (feedback < 0 || attached_kind == HEADERS_PART) goto decline; /* the latter: decoded by the Python reader */

    READ(part_block(&m, feedback, &spans, &stop, &body));
    if (find_span(s, &spans, "content-type") != NULL)
        goto decline; /* the standard library reads such a fields block as a typed part of its own */
    if ((fields = index_spans(s, fetch, spans.items, spans.count)) == NULL) goto done;
    if (attached >= 0) {
        READ(part_block(&m, attached, &spans, &stop, &body));
        original = fields_new(data, skip, fetch, &spans);
    } else {
        original = Py_NewRef(Py_None);
    }
    if (original == NULL) goto done;
    if ((top = fields_new(data, skip, fetch, &top_spans)) == NULL) goto done;
    out = PyTuple_Pack(3, top, fields, original);
    goto done;
#undef READ

decline:
    out = Py_NewRef(Py_None);
done: /* out is NULL on an error */
    Py_XDECREF(top);
    Py_XDECREF(fields);
    Py_XDECREF(original);
    spans_free(&top_spans);
    spans_free(&spans);
    return out;
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
