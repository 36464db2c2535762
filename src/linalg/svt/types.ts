/** The types of the SVT operator's options and answers (svt.ts is the operator). */

export type SvtMethod = 'auto' | 'polar' | 'subspace' | 'gram' | 'jacobi';
/**
 * 'always': factors and values are returned; 'whenLowRank': only when the factors are smaller than
 * the dense matrix (rank * (rows + cols) < rows * cols), i.e. when the downlink would send them.
 */
export type FactorPolicy = 'always' | 'whenLowRank';

export interface SvtOptions {
  method?: SvtMethod;
  factors?: FactorPolicy;
  /** What the same matrix looked like last time (from a previous result's `hint`). */
  hint?: SvtHint;
}

/**
 * Memory of the previous call on the same matrix (keep it and pass it back): whether it was full
 * rank, and for low-rank answers the kept rank and right singular vectors (tall orientation,
 * column-major n x rank), which warm-start the subspace path.
 */
export interface SvtHint {
  fullRank: boolean;
  rank?: number;
  basis?: Float32Array;
  /** Certified lower bound on s_min / s_max that the polar path used last time. */
  polarL?: number;
  /** Top eigenvector of the Gram matrix (the polar path's power iteration starts from it). */
  topVector?: Float32Array;
}

export interface SvtResult {
  rows: number;
  cols: number;
  /** Number of singular values above tau. */
  rank: number;
  /** min(rows, cols). */
  fullRank: number;
  /** Thresholded singular values s - tau (> 0), descending; null when factors were not computed. */
  values: Float64Array | null;
  /** rows x rank, row-major, orthonormal columns; null when factors were not computed. */
  u: Float32Array | null;
  /** cols x rank, row-major, orthonormal columns; null when factors were not computed. */
  v: Float32Array | null;
  /** The thresholded matrix, rows x cols row-major. */
  matrix: Float32Array;
  /** The method that produced the answer. */
  method: Exclude<SvtMethod, 'auto'>;
  /** Orthogonality error (max |Q^T Q - I|) of the polar factor when method is 'polar'. */
  polarOrthError?: number;
  hint: SvtHint;
}
