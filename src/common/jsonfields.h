/* jsonfields.h: checks a JSON object's members against a declared schema before it is
 * unpacked, so that errors name the field ("unknown field 'colour'", "field 'name' must be
 * a string") instead of jansson's positional messages. */
#ifndef AVA_COMMON_JSONFIELDS_H
#define AVA_COMMON_JSONFIELDS_H

#include <jansson.h>
#include <stdbool.h>

enum ava_field_type {
    AVA_FIELD_STRING,
    AVA_FIELD_INT, /* a JSON integer */
    AVA_FIELD_BOOL,
    AVA_FIELD_OBJECT,
    AVA_FIELD_ARRAY,
};

struct ava_field {
    const char *name;
    enum ava_field_type type;
    bool required;
    bool nullable; /* JSON null is accepted (and means "not given") */
};

/* Checks obj: every member is declared in fields (n entries) with the right type, and
 * every required member is there. Null members of nullable fields are removed from obj
 * (null means "not given"). Returns 0 or AVA_EINVALID with a message naming the
 * field (prefixed by what, e.g. "manifest"; may be NULL). */
int ava_json_check_fields(json_t *obj, const struct ava_field *fields, size_t n, const char *what,
                          char *err);

#endif
