// Low-rank update W += R·C, f32, row-major with leading dimensions (in elements):
// W: rows×cols (ldw), R: rows×rank (ldr), C: rank×cols (ldc). Each W element gets
// W + R[i,0]*C[0,j] + R[i,1]*C[1,j] + ... added left to right (no FMA), so the SIMD and scalar
// builds agree bit for bit. Blocked by 64-column panels so the rank×64 panel of C stays in L1
// while every row of W streams through once.

const PANEL: usize = 64;

export function lowrank_apply_f32(w: usize, ldw: usize, r: usize, ldr: usize, c: usize, ldc: usize, rows: usize, cols: usize, rank: usize): void {
  for (let j0: usize = 0; j0 < cols; j0 += PANEL) {
    const j1 = j0 + PANEL < cols ? j0 + PANEL : cols;
    for (let i: usize = 0; i < rows; i++) {
      const wrow = w + i * ldw * 4;
      const rrow = r + i * ldr * 4;
      let j = j0;
      if (ASC_FEATURE_SIMD) {
        for (; j + 16 <= j1; j += 16) {
          const pw = wrow + (j << 2);
          let a0 = v128.load(pw), a1 = v128.load(pw, 16), a2 = v128.load(pw, 32), a3 = v128.load(pw, 48);
          let pc = c + (j << 2);
          for (let k: usize = 0; k < rank; k++) {
            const rv = f32x4.splat(load<f32>(rrow + (k << 2)));
            a0 = f32x4.add(a0, f32x4.mul(rv, v128.load(pc)));
            a1 = f32x4.add(a1, f32x4.mul(rv, v128.load(pc, 16)));
            a2 = f32x4.add(a2, f32x4.mul(rv, v128.load(pc, 32)));
            a3 = f32x4.add(a3, f32x4.mul(rv, v128.load(pc, 48)));
            pc += ldc << 2;
          }
          v128.store(pw, a0);
          v128.store(pw, a1, 16);
          v128.store(pw, a2, 32);
          v128.store(pw, a3, 48);
        }
        for (; j + 4 <= j1; j += 4) {
          const pw = wrow + (j << 2);
          let a0 = v128.load(pw);
          let pc = c + (j << 2);
          for (let k: usize = 0; k < rank; k++) {
            a0 = f32x4.add(a0, f32x4.mul(f32x4.splat(load<f32>(rrow + (k << 2))), v128.load(pc)));
            pc += ldc << 2;
          }
          v128.store(pw, a0);
        }
      } else {
        for (; j + 4 <= j1; j += 4) {
          const pw = wrow + (j << 2);
          let a0 = load<f32>(pw), a1 = load<f32>(pw, 4), a2 = load<f32>(pw, 8), a3 = load<f32>(pw, 12);
          let pc = c + (j << 2);
          for (let k: usize = 0; k < rank; k++) {
            const rv = load<f32>(rrow + (k << 2));
            a0 += rv * load<f32>(pc);
            a1 += rv * load<f32>(pc, 4);
            a2 += rv * load<f32>(pc, 8);
            a3 += rv * load<f32>(pc, 12);
            pc += ldc << 2;
          }
          store<f32>(pw, a0);
          store<f32>(pw, a1, 4);
          store<f32>(pw, a2, 8);
          store<f32>(pw, a3, 12);
        }
      }
      for (; j < j1; j++) {
        const pw = wrow + (j << 2);
        let a = load<f32>(pw);
        for (let k: usize = 0; k < rank; k++) a += load<f32>(rrow + (k << 2)) * load<f32>(c + (k * ldc + j) * 4);
        store<f32>(pw, a);
      }
    }
  }
}
