// Small statistics helpers. Inputs are plain arrays of numbers.

/** Median of an array (need not be sorted); NaN for an empty one. */
export function median(values) {
  return quantile(values, 0.5);
}

/** Linear-interpolated quantile q (0..1) of `values`; NaN for an empty array. */
export function quantile(values, q) {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return NaN;
  const sorted = [...finite].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function min(values) {
  const finite = values.filter((v) => Number.isFinite(v));
  return finite.length ? Math.min(...finite) : NaN;
}

export function max(values) {
  const finite = values.filter((v) => Number.isFinite(v));
  return finite.length ? Math.max(...finite) : NaN;
}

/** Least-squares fit y = a + b x; returns { a, b, r2 }. */
export function linearFit(xs, ys) {
  const n = xs.length;
  if (n < 2) return { a: NaN, b: NaN, r2: NaN };
  const mx = xs.reduce((s, x) => s + x, 0) / n;
  const my = ys.reduce((s, y) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  const b = sxy / sxx;
  const a = my - b * mx;
  const r2 = syy === 0 ? 1 : (sxy * sxy) / (sxx * syy);
  return { a, b, r2 };
}
