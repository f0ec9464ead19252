/* lineproto.h: InfluxDB line protocol, strict, as ava's metrics travel (DESIGN §5):
 *
 *   accuracy,phase=val,epoch=3 value=0.912,step=1200i 1764130000000000000
 *
 * measurement[,tag=value...] field=value[,field=value...] [timestamp_ns]
 * with the protocol's escaping (\ before ',', ' ', '=' in tags and keys; ',', ' ' in the
 * measurement; '"' and '\' in string fields), field types float (1.5, 1e-3), integer (12i),
 * unsigned (12u), boolean (t, true, f, false...), string ("..."), and an optional integer
 * nanosecond timestamp. Lines are bounded (AVA_LP_LINE_MAX). Strict where the protocol is
 * lax, so that nothing is ambiguous: a backslash must escape one of , space = \ (in names)
 * or " \ (in strings), never anything else; floats are decimal (no NaN, Inf, hex) and
 * finite; integers and unsigneds are range-checked (unsigned up to INT64_MAX); duplicate
 * tag or field keys, empty keys or tag values, more than 16 tags or fields, names over 64
 * bytes, strings and tag values over 255 bytes, NUL bytes and anything after the timestamp
 * are refused. One trailing '\r' (CRLF bodies) and trailing spaces are allowed. */
#ifndef AVA_METRICS_LINEPROTO_H
#define AVA_METRICS_LINEPROTO_H

#include "point.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AVA_LP_LINE_MAX 4096
#define AVA_LP_MAX_TAGS 16
#define AVA_LP_MAX_FIELDS 16

enum ava_lp_type { AVA_LP_FLOAT, AVA_LP_INT, AVA_LP_UINT, AVA_LP_BOOL, AVA_LP_STRING };

struct ava_lp_kv {
    char key[AVA_METRIC_NAME_MAX + 1];
    enum ava_lp_type type; /* fields only; tags are strings */
    double f;
    int64_t i;   /* INT, UINT (up to INT64_MAX), BOOL (0/1) */
    char s[256]; /* tag values, STRING fields (unescaped) */
};

/* One parsed line. */
struct ava_lp_line {
    char measurement[AVA_METRIC_NAME_MAX + 1];
    struct ava_lp_kv tags[AVA_LP_MAX_TAGS];
    int ntags;
    struct ava_lp_kv fields[AVA_LP_MAX_FIELDS];
    int nfields;
    bool has_time;
    int64_t time_ns;
};

/* Parses one line (len bytes, without its '\n'). Returns 0, or AVA_EINVALID with a message
 * naming the problem and its column ("column 17: a field value must be ..."; columns count
 * bytes from 1). Empty lines, blank lines and '#' comments are AVA_ENOTFOUND (nothing to
 * do, not an error). Tags have type AVA_LP_STRING; f holds every numeric field as a double. */
int ava_lp_parse(const char *line, size_t len, struct ava_lp_line *out, char *err);

/* Converts a parsed line into an ava point: the measurement is the metric name, fields
 * `value` (float or integer, finite) and `step` (integer >= 0) are required, tags `phase`
 * and `epoch` (a non-negative integer) are optional, other tags/fields are refused; the
 * timestamp becomes time_ms. */
int ava_lp_to_point(const struct ava_lp_line *l, struct ava_point *p, char *err);

/* Converts a line of the original AVA SDK: measurements ava_metric_training_loss,
 * ..._learning_rate, ..._val_accuracy (field value) and ..._sample_num (field count), tags
 * epoch and batch; they map to loss, learning_rate, accuracy (phase val) and samples, with
 * step = batch (or epoch when there is no batch; one of them is required). loss,
 * learning_rate and samples get phase train. Other tags and fields of these lines are
 * ignored (the original SDK's payloads are not ours to change). Other lines go through
 * ava_lp_to_point. */
int ava_lp_to_point_ava_sdk(const struct ava_lp_line *l, struct ava_point *p, char *err);

/* Parses one line (len bytes, without its '\n') straight into p, as ava_lp_parse +
 * ava_lp_to_point would, but without them (and several times faster) for the one shape
 * ava-shim writes: NAME[,phase=P][,epoch=E] value=V,step=Si[ T], T of 10-19 digits; *fast
 * (may be NULL) says whether that shape was taken. Returns 0, AVA_ENOTFOUND for a blank line
 * or a comment, or another AVA_E* code for a bad line (no message: the ingest only counts
 * them). */
int ava_lp_line_point(const char *line, size_t len, struct ava_point *p, bool *fast);

/* Formats a point as one line (with '\n') into out. Returns the length, or -1 when outlen
 * is too small or the point cannot be written (empty name, a name starting with '#', a
 * line break in the name or phase, a value that is not finite). Names and phases are
 * written escaped; value with %.17g; step with 'i'; tag epoch when epoch >= 0; the
 * timestamp (time_ms * 1e6 ns) when time_ms is not 0. */
int ava_lp_format(const struct ava_point *p, char *out, size_t outlen);

#endif
