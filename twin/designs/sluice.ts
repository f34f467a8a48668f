import type { Design } from '../world';

export function sluiceDesign(_stage: string): Design {
  throw new Error('the sluice design is not wired yet');
}
