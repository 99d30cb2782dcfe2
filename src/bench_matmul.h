/* The matmul family's benchmark with a choice of weight types (bench.h's xt_bench has no type
 * list yet; xt_bench_matmul runs the default types). */
#ifndef XT_BENCH_MATMUL_H
#define XT_BENCH_MATMUL_H

#include "bench.h"

/* Rows for each of types[0..n_types) (xt_type values; n_types 0: q4_K, q6_K, q8_0). */
xt_status xt_bench_matmul_types(xt_bench *b, const uint32_t *types, uint32_t n_types,
                                xt_error *err);

#endif
