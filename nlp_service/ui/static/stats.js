// The expected band used on every chart: expected -/+ 2 sqrt(expected) (Poisson, about 95%), floored at 0.
// The overview's aggregate computes the same band server-side (nlp_service.ui.service.band).
export function bandOf(expected) {
  if (expected === null || expected === undefined) return { low: null, high: null };
  const spread = 2 * Math.sqrt(Math.max(expected, 0));
  return { low: Math.max(expected - spread, 0), high: expected + spread };
}
