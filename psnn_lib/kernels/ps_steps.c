/* The PS neuron's time-stepped simulator, Eqs. 1-3, once per grid point present (paper 1;
   psnn_lib.neurons.ps: PSNeuron._steps_torch, the torch twin, computes the same bits).

   The n inputs come snapped (psnn_lib.ps.grid.snap): `index` is each one's padded index 0..G+1
   (0 and G+1: beyond either end, saturating to the end points; a NaN input sits at 1, `nan`
   marks it). The grid points the inputs snap to are listed in order in `at` (their number goes
   to totals[0]); `which[i]` is input i's position in that list.

   For each listed point, h (K x G, row-major) gives its initial membrane v(1) = h[0][g] and its
   reset voltages h(t+1) = h[t][g]. At step t (0-based) the point spikes when v >= T[t] (Eq. 1);
   its output so far grows by d[t] where it spiked (Eq. 3: acc + d, one rounding, as the twin's
   acc.add_(z, alpha=d)), and its membrane becomes the next reset where it spiked (Eq. 2). With
   `record`, row t of v, z and acc (each K x G entries, the first totals[0] of each row used)
   is step t; without, the three hold the last step (G entries). fired counts each point's
   spikes. totals: points present, spikes of the non-NaN inputs, inputs at index 0, at G+1.
   Built with -ffp-contract=off, like every kernel here. */
#include <stdint.h>
#include <string.h>

/* The grid point (0..G-1) of a padded index: the ends saturate to the end points. */
static inline int64_t point_of(int64_t k, int64_t G) {
    return k == 0 ? 0 : k > G ? G - 1 : k - 1;
}

static void steps(int64_t points, int64_t K, int64_t G, const double *h, const int64_t *at, const double *T,
                  const double *d, double *v, uint8_t *z, double *acc, int64_t *fired, int record) {
    int64_t width = record ? G : 0; /* a recorded step's row */
    for (int64_t j = 0; j < points; j++) {
        v[j] = h[at[j]];
        fired[j] = 0;
    }
    for (int64_t t = 0; t < K; t++) {
        double *vt = v + t * width, *out = acc + t * width;
        const double *before = t > 0 ? acc + (t - 1) * width : NULL;
        double *next = t + 1 < K ? v + (t + 1) * width : NULL;
        const double *reset = h + (t + 1) * G;
        uint8_t *zt = z + t * width;
        for (int64_t j = 0; j < points; j++) {
            double vj = vt[j], a = before != NULL ? before[j] : 0.0;
            uint8_t spike = vj >= T[t];
            zt[j] = spike;
            out[j] = spike ? a + d[t] : a;
            fired[j] += spike;
            if (next != NULL) {
                next[j] = spike ? reset[at[j]] : vj;
            }
        }
    }
}

void psnn_ps_stepped(int64_t n, const int32_t *index, const uint8_t *nan, int64_t G, int64_t K, const double *h,
                     const double *T, const double *d, int record, int64_t *which, int64_t *at, double *v,
                     uint8_t *z, double *acc, int64_t *fired, int64_t *totals) {
    int64_t low = 0, high = 0, points = 0, spikes = 0;
    int64_t *position = fired; /* per grid point: its place in `at` (fired is free until the steps) */
    memset(position, 0, (size_t)G * sizeof *position);
    for (int64_t i = 0; i < n; i++) {
        int64_t k = index[i];
        low += k == 0;
        high += k == G + 1;
        position[point_of(k, G)] = 1;
    }
    for (int64_t g = 0; g < G; g++) {
        if (position[g]) {
            at[points] = g;
            position[g] = points++;
        }
    }
    for (int64_t i = 0; i < n; i++) {
        which[i] = position[point_of(index[i], G)];
    }
    steps(points, K, G, h, at, T, d, v, z, acc, fired, record);
    for (int64_t i = 0; i < n; i++) {
        spikes += nan[i] ? 0 : fired[which[i]];
    }
    totals[0] = points;
    totals[1] = spikes;
    totals[2] = low;
    totals[3] = high;
}
