import { ThetaError } from '../core/errors.ts';
import type { ObjectRef, UpdateStep } from '../theta/metadata.ts';
import type { UpdateType } from './types.ts';

/** The whole tensor as one object. */
export const dense: UpdateType = {
  name: 'dense',
  incremental: false,
  description: 'the whole tensor as one object',
  async encode(ctx) {
    return { update: 'dense', object: await ctx.store.put(ctx.next) };
  },
  async apply(step: UpdateStep, _prev, ctx) {
    const ref = step.object as ObjectRef;
    const bytes = await ctx.store.get(ref.oid);
    if (bytes.length !== ref.size) {
      throw new ThetaError('E_OBJECT_CORRUPT', `tensor '${ctx.name}': object ${ref.oid} has ${bytes.length} bytes, expected ${ref.size}`, { tensor: ctx.name, oid: ref.oid });
    }
    return bytes;
  },
};
