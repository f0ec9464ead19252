/* logparse.h: turning training log lines into metric points, for frameworks that print
 * their metrics (DESIGN §5): built-in parsers for MXNet, Caffe, darknet, Keras and PyTorch,
 * and user rules (name + POSIX extended regex with one capture group, like SageMaker's metric
 * definitions). Used by ava-shim on the entry's output.
 *
 * What each built-in parser reads and the points it makes (name, phase; "train" unless
 * said). Names are lowercased, characters outside [a-z0-9._/-] become '_', acc -> accuracy,
 * lr -> learning_rate; accuracies are fractions (0..1) everywhere.
 *   mxnet    Speedometer "Epoch[e] Batch [a-b]\tSpeed: s samples/sec\tname=v..." (also
 *            "Batch [b]", "Train-name=v", "Iter[e]"): samples_per_sec and each name;
 *            "Epoch[e] Validation-name=v": name, val; "Epoch[e] Train-name=v": name, only
 *            for epochs without Speedometer lines; "Epoch[e] Time cost=t": epoch_time
 *            (phase none); "Update[n]: Change learning rate to r" (and "... arrived at
 *            r"): learning_rate at step n.
 *   caffe    (glog prefix optional) "Iteration N (...), loss = L" / "Iteration N, loss =
 *            L": loss; "Iteration N, lr = R": learning_rate; "Train net output #k: blob =
 *            v": blob (a blob named loss is the Iteration line's loss and is not repeated);
 *            "Iteration N, Testing net (#k)" then "Test net output #j: blob = v": blob,
 *            phase val (val1, val2... for test nets 1, 2...). Steps: N.
 *   darknet  "N, e: loss, avg avg, r rate, ..." (classifier; epoch = floor(e)),
 *            "N: loss, avg avg[ loss], r rate, ..." (detector, AlexeyAB's fork): loss,
 *            avg_loss, learning_rate at step N.
 *   keras    progress bars "cur/total [bar] - ... - name: v - val_name: v" (tf.keras and
 *            Keras 3, '\r' updates, backspaces and colours ignored; "cur/Unknown"; Keras
 *            2.2's verbose=2 " - 5s - name: v"): name, and val_name as name, val. "Epoch
 *            E/N" sets the epoch; an evaluate()/predict() bar after the epoch is ignored.
 *   pytorch  examples/mnist "Train Epoch: E [n/T (p%)]\tLoss: L": loss; "Test set: Average
 *            loss: L, Accuracy: c/t": loss, accuracy (c/t), val; examples/imagenet
 *            "Epoch: [E][b/T]\t... Loss v (avg)\tAcc@1 v (avg)\tAcc@5 v (avg)": loss,
 *            accuracy, top_k_accuracy_5 (current batch values, /100); " * Acc@1 a Acc@5
 *            b": accuracy, top_k_accuracy_5, val.
 * Steps of per-epoch batch counters (mxnet, keras, pytorch): step = (epoch - first) *
 * batches_per_epoch + batch, where first is the framework's first epoch number (0 for
 * MXNet and imagenet, 1 for Keras and mnist) and batches_per_epoch is the total the line
 * prints (Keras "cur/total", PyTorch "[n/T]"; mnist counts samples, so its steps do too) or,
 * for MXNet and "Unknown", 1 + the largest batch index of the earlier epochs. Steps never go
 * backwards: a log that starts its epochs over continues after the last step. Epoch
 * summaries (validation, epoch averages, test sets) take the last step of their epoch, or
 * the epoch number when the log has no batch lines. Points carry the epoch as the framework
 * prints it (-1 for caffe, darknet's detector and learning-rate changes). */
#ifndef AVA_METRICS_LOGPARSE_H
#define AVA_METRICS_LOGPARSE_H

#include "point.h"

#include <stddef.h>

#define AVA_LOGPARSE_MAX_RULES 40

struct ava_logparse;

/* Creates a parser: `parser` names a built-in one ("mxnet", "caffe", "darknet", "keras",
 * "pytorch") or is NULL/""/"none" for none; rules are "NAME=REGEX" strings (at most 40;
 * NAME is 1-64 of [A-Za-z0-9._/-]; REGEX is POSIX extended with exactly one capture group,
 * which must read as a number for a line to give a point). A rule's point is named NAME as
 * written, has no phase and epoch -1, and its step is the built-in parser's current step
 * (that of its last point, 0 before any) or, with no built-in parser, the number of lines
 * fed so far (1 for the first). Each rule gives at most one point per update of a line.
 * Returns 0 or AVA_EINVALID naming the bad parser name or rule (by its 1-based index).
 * *out: ava_logparse_free. */
int ava_logparse_new(const char *parser, const char *const *rules, size_t nrules,
                     struct ava_logparse **out, char *err);
void ava_logparse_free(struct ava_logparse *lp);

/* Feeds one line (without '\n'; a line may hold '\r'-separated progress-bar updates, each is
 * parsed; backspaces and terminal escape sequences are dropped; only the first 4096 bytes
 * of an update, once cleaned, are read) and appends the points found to out (capacity cap; points
 * beyond it are dropped); returns how many. Steps come from the line when it has them
 * (batch/iteration numbers; for frameworks that count batches per epoch, step = epoch *
 * batches_per_epoch + batch, see above), else from the parser's own counter. time_ms is 0 (the
 * caller stamps it). */
size_t ava_logparse_line(struct ava_logparse *lp, const char *line, size_t len,
                         struct ava_point *out, size_t cap);

/* The names of the built-in parsers, NULL-terminated. */
extern const char *const ava_logparse_builtin[];

#endif
