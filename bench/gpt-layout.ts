/** The tensor layout of a GPT-2-like model of about `totalBytes` of float32 weights (benchmarks' test models). */
export interface TensorLayout { name: string; shape: number[] }

export function gptLayout(totalBytes: number, o: { d: number; vocab: number; positions: number }): TensorLayout[] {
  const { d, vocab, positions } = o;
  const out: TensorLayout[] = [{ name: 'wte.weight', shape: [vocab, d] }, { name: 'wpe.weight', shape: [positions, d] }];
  const perLayer = (3 * d * d + d * d + 4 * d * d + 4 * d * d) * 4;
  const layers = Math.max(1, Math.round((totalBytes - (vocab + positions) * d * 4) / perLayer));
  for (let l = 0; l < layers; l++) {
    const p = `h.${l}.`;
    out.push(
      { name: p + 'ln_1.weight', shape: [d] }, { name: p + 'ln_1.bias', shape: [d] },
      { name: p + 'attn.c_attn.weight', shape: [3 * d, d] }, { name: p + 'attn.c_attn.bias', shape: [3 * d] },
      { name: p + 'attn.c_proj.weight', shape: [d, d] }, { name: p + 'attn.c_proj.bias', shape: [d] },
      { name: p + 'ln_2.weight', shape: [d] }, { name: p + 'ln_2.bias', shape: [d] },
      { name: p + 'mlp.c_fc.weight', shape: [4 * d, d] }, { name: p + 'mlp.c_fc.bias', shape: [4 * d] },
      { name: p + 'mlp.c_proj.weight', shape: [d, 4 * d] }, { name: p + 'mlp.c_proj.bias', shape: [d] },
    );
  }
  out.push({ name: 'ln_f.weight', shape: [d] }, { name: 'ln_f.bias', shape: [d] });
  return out;
}
