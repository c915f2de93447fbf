/* The PS neuron's fast path in one pass over the inputs (psnn_lib.neurons.ps; paper 1, Eq. 3 read
   from the output table, its spikes from the count table).

   Each input snaps to its padded grid index exactly as psnn_lib.ps.grid.snap defines it: in
   float64, x * inv and then + c, each rounded (built with -ffp-contract=off: never a fused
   multiply-add), clamped to [0, last], truncated; a NaN input outputs NaN and counts nowhere.
   The table `packed` holds per index the float32 output's bits (low 32 bits) and the spike
   count (high 32 bits), so that one read serves both; float64 inputs read their output from
   `out64`. totals: spikes, inputs at index 0, inputs at index last, NaN inputs.

   Where the compiler targets AVX2, four inputs at a time (the same IEEE operations: the
   conversion to float64 is exact, the product and the sum are rounded apart, max/min/truncation
   are exact), the four table entries read by scalar loads (faster than AVX2's gather
   instruction on the AMD Zen 3 machine this was measured on: 0.73 against 0.84 ms per million
   inputs); the scalar loop takes the rest, and every input on other machines. OpenMP shares
   the inputs among `threads` in contiguous ranges (the runtime torch loaded, found by its
   soname libgomp.so.1). */
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    int64_t spikes, low, high, nans;
} totals_t;

/* The snap of one input; sets *nan. */
static inline int32_t snap_one(double v, double inv, double c, double top, int64_t *nan) {
    double pos = v * inv;
    pos = pos + c;
    *nan = pos != pos;
    pos = *nan ? 1.5 : pos;
    pos = pos < 0.0 ? 0.0 : pos;
    pos = pos > top ? top : pos;
    return (int32_t)pos;
}

static inline uint64_t count_one(const uint64_t *packed, int32_t k, int64_t nan, int64_t last, totals_t *t) {
    uint64_t entry = packed[k];
    t->spikes += nan ? 0 : (int64_t)(entry >> 32);
    t->low += k == 0;
    t->high += k == last;
    t->nans += nan;
    return entry;
}

#ifdef __AVX2__
/* Four snap positions `pos` to indices k: nan, lo (index 0: pos < 1) and hi (index last: pos >=
   last) as lane masks, taken before the clamp; max(NaN, 0) is 0, so a NaN lane reads index 0,
   whose entry the NaN mask then discards (its output is NaN, its spikes and ends uncounted). */
#define PS_SNAP4                                                                                   \
    __m256d nan = _mm256_cmp_pd(pos, pos, _CMP_UNORD_Q);                                           \
    __m256d lo = _mm256_cmp_pd(pos, one, _CMP_LT_OQ);                                              \
    __m256d hi = _mm256_cmp_pd(pos, vtop, _CMP_GE_OQ);                                             \
    pos = _mm256_min_pd(_mm256_max_pd(pos, zero), vtop);

/* Four lanes of the counts, added up once a range is done. */
typedef struct {
    __m256i spikes, low, high, nans;
} counts4_t;

static inline void count4(counts4_t *a, __m256i entry, __m256d nan, __m256d lo, __m256d hi) {
    a->spikes = _mm256_add_epi64(a->spikes, _mm256_andnot_si256(_mm256_castpd_si256(nan), _mm256_srli_epi64(entry, 32)));
    a->low = _mm256_sub_epi64(a->low, _mm256_castpd_si256(lo)); /* a true lane is -1 */
    a->high = _mm256_sub_epi64(a->high, _mm256_castpd_si256(hi));
    a->nans = _mm256_sub_epi64(a->nans, _mm256_castpd_si256(nan));
}

/* The four table entries at the indices k (scalar loads). */
static inline __m256i load4(const void *table, __m128i k) {
    const int64_t *entries = (const int64_t *)table;
    int32_t at[4];
    _mm_storeu_si128((__m128i *)at, k);
    return _mm256_setr_epi64x(entries[at[0]], entries[at[1]], entries[at[2]], entries[at[3]]);
}

static inline void fold4(const counts4_t *a, totals_t *t) {
    int64_t lanes[4];
    __m256i sums[4] = {a->spikes, a->low, a->high, a->nans};
    int64_t *fields[4] = {&t->spikes, &t->low, &t->high, &t->nans};
    for (int f = 0; f < 4; f++) {
        _mm256_storeu_si256((__m256i *)lanes, sums[f]);
        *fields[f] += lanes[0] + lanes[1] + lanes[2] + lanes[3];
    }
}
#endif

static void range_f32(int64_t begin, int64_t end, const float *x, double inv, double c, int64_t last,
                      const uint64_t *packed, float *out, totals_t *t) {
    const double top = (double)last;
    int64_t i = begin;
#ifdef __AVX2__
    const __m256d vinv = _mm256_set1_pd(inv), vc = _mm256_set1_pd(c), vtop = _mm256_set1_pd(top);
    const __m256d zero = _mm256_setzero_pd(), one = _mm256_set1_pd(1.0);
    const __m256i low_words = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    const __m128i qnan = _mm_set1_epi32(0x7fc00000);
    counts4_t acc = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
    for (; i + 4 <= end; i += 4) {
        __m256d pos = _mm256_add_pd(_mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), vinv), vc);
        PS_SNAP4
        __m128i k = _mm256_cvttpd_epi32(pos);
        __m256i entry = load4(packed, k);
        __m128i bits = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(entry, low_words));
        __m128i nan32 = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(_mm256_castpd_si256(nan), low_words));
        _mm_storeu_si128((__m128i *)(out + i), _mm_blendv_epi8(bits, qnan, nan32));
        count4(&acc, entry, nan, lo, hi);
    }
    fold4(&acc, t);
#endif
    for (; i < end; i++) {
        int64_t nan;
        int32_t k = snap_one((double)x[i], inv, c, top, &nan);
        uint32_t entry_bits = (uint32_t)count_one(packed, k, nan, last, t);
        uint32_t bits = nan ? 0x7fc00000u : entry_bits;
        memcpy(out + i, &bits, sizeof bits);
    }
}

static void range_f64(int64_t begin, int64_t end, const double *x, double inv, double c, int64_t last,
                      const uint64_t *packed, const double *out64, double *out, totals_t *t) {
    const double top = (double)last;
    int64_t i = begin;
#ifdef __AVX2__
    const __m256d vinv = _mm256_set1_pd(inv), vc = _mm256_set1_pd(c), vtop = _mm256_set1_pd(top);
    const __m256d zero = _mm256_setzero_pd(), one = _mm256_set1_pd(1.0), qnan = _mm256_set1_pd(NAN);
    counts4_t acc = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
    for (; i + 4 <= end; i += 4) {
        __m256d pos = _mm256_add_pd(_mm256_mul_pd(_mm256_loadu_pd(x + i), vinv), vc);
        PS_SNAP4
        __m128i k = _mm256_cvttpd_epi32(pos);
        __m256i entry = load4(packed, k);
        _mm256_storeu_pd(out + i, _mm256_blendv_pd(_mm256_castsi256_pd(load4(out64, k)), qnan, nan));
        count4(&acc, entry, nan, lo, hi);
    }
    fold4(&acc, t);
#endif
    for (; i < end; i++) {
        int64_t nan;
        int32_t k = snap_one(x[i], inv, c, top, &nan);
        count_one(packed, k, nan, last, t);
        out[i] = nan ? (double)NAN : out64[k];
    }
}

/* Runs RANGE over [0, n) in `threads` contiguous ranges (one where n is small), summing totals. */
#define PARALLEL(RANGE)                                                                            \
    totals_t sum = {0, 0, 0, 0};                                                                   \
    int64_t s = 0, l = 0, h = 0, z = 0;                                                            \
    _Pragma("omp parallel num_threads(threads) if (n > 32768) reduction(+ : s, l, h, z)")         \
    {                                                                                              \
        int64_t team = 1, me = 0;                                                                  \
        PARALLEL_TEAM                                                                              \
        totals_t t = {0, 0, 0, 0};                                                                 \
        RANGE(n * me / team, n * (me + 1) / team, &t);                                             \
        s += t.spikes;                                                                             \
        l += t.low;                                                                                \
        h += t.high;                                                                               \
        z += t.nans;                                                                               \
    }                                                                                              \
    sum.spikes = s;                                                                                \
    sum.low = l;                                                                                   \
    sum.high = h;                                                                                  \
    sum.nans = z;                                                                                  \
    memcpy(totals, &sum, sizeof sum);

#ifdef _OPENMP
#define PARALLEL_TEAM                                                                              \
    team = omp_get_num_threads();                                                                  \
    me = omp_get_thread_num();
#else
#define PARALLEL_TEAM
#endif

void psnn_ps_fast_f32(int64_t n, const float *x, double inv, double c, int64_t last, const uint64_t *packed,
                      float *out, int64_t *totals, int threads) {
#define RANGE32(b, e, t) range_f32(b, e, x, inv, c, last, packed, out, t)
    PARALLEL(RANGE32)
}

void psnn_ps_fast_f64(int64_t n, const double *x, double inv, double c, int64_t last, const uint64_t *packed,
                      const double *out64, double *out, int64_t *totals, int threads) {
#define RANGE64(b, e, t) range_f64(b, e, x, inv, c, last, packed, out64, out, t)
    PARALLEL(RANGE64)
}
