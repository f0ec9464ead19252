/* jsonfields.c: schema checks of request and manifest objects (see jsonfields.h). */
#include "jsonfields.h"

#include "err.h"

#include <string.h>

static const char *type_name(enum ava_field_type t) {
    static const char *const names[] = {"a string", "an integer", "true or false", "an object",
                                        "an array"};
    return names[t];
}

/* True when v has type t. */
static bool type_ok(json_t *v, enum ava_field_type t) {
    switch (t) {
    case AVA_FIELD_STRING:
        return json_is_string(v);
    case AVA_FIELD_INT:
        return json_is_integer(v);
    case AVA_FIELD_BOOL:
        return json_is_boolean(v);
    case AVA_FIELD_OBJECT:
        return json_is_object(v);
    case AVA_FIELD_ARRAY:
        return json_is_array(v);
    }
    return false;
}

int ava_json_check_fields(json_t *obj, const struct ava_field *fields, size_t n, const char *what,
                          char *err) {
    const char *pre = what ? what : "", *sep = what ? ": " : "";
    const char *key;
    json_t *v, *tmp;
    if (!json_is_object(obj))
        return ava_err(err, AVA_EINVALID, "%s%sexpected a JSON object", pre, sep);
    json_object_foreach_safe(obj, tmp, key, v) {
        size_t i = 0;
        while (i < n && strcmp(fields[i].name, key) != 0)
            i++;
        if (i == n)
            return ava_err(err, AVA_EINVALID, "%s%sunknown field '%s'", pre, sep, key);
        if (json_is_null(v) && fields[i].nullable && !fields[i].required) {
            json_object_del(obj, key); /* null = not given, so unpacking sees it absent */
            continue;
        }
        if (!type_ok(v, fields[i].type))
            return ava_err(err, AVA_EINVALID, "%s%sfield '%s' must be %s", pre, sep, key,
                           type_name(fields[i].type));
    }
    for (size_t i = 0; i < n; i++)
        if (fields[i].required && !json_object_get(obj, fields[i].name))
            return ava_err(err, AVA_EINVALID, "%s%sfield '%s' is required", pre, sep,
                           fields[i].name);
    return 0;
}
