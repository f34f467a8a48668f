import { TerraformAsset, TerraformResource, TerraformStack } from 'cdktf';
// cdktf's own naming of a construct path (what every address and asset folder of a stack is made of); not re-exported.
import { makeUniqueId } from 'cdktf/lib/private/unique';
import type { IConstruct, Node } from 'constructs';

/**
 * Constructs whose path under the stack changed, and the path they had: the functions the single `Dispatch`
 * construct held are now `Admission`'s and `Janitor`'s, and the dispatcher's wake-up on uploads is the intake's.
 * A path here matches itself and everything under it.
 */
const MOVED_FROM: ReadonlyArray<readonly [now: string, before: string]> = [
  ['admission', 'dispatch'],
  ['janitor', 'dispatch'],
  ['intake/dispatch-on-upload-target', 'dispatch/dispatch-on-upload-target'],
  ['intake/dispatch-on-upload-permission', 'dispatch/dispatch-on-upload-permission'],
];

/** The path components a construct had before it moved, or undefined if it did not move. */
export function previousPath(components: readonly string[]): string[] | undefined {
  for (const [now, before] of MOVED_FROM) {
    const prefix = now.split('/');
    if (prefix.every((part, i) => components[i] === part)) return [...before.split('/'), ...components.slice(prefix.length)];
  }
  return undefined;
}

/** A construct's path components under its stack. */
function componentsUnder(stack: TerraformStack, node: Node): string[] {
  return node.scopes.slice(node.scopes.indexOf(stack) + 1).map((scope) => scope.node.id);
}

/**
 * Every resource of the stack that moved gets a `moved` block from its address before: an applied stage re-plans
 * with moves, nothing destroyed and created again.
 */
export function recordMoves(stack: TerraformStack): void {
  for (const construct of stack.node.findAll()) {
    if (!TerraformResource.isTerraformResource(construct)) continue;
    const before = previousPath(componentsUnder(stack, construct.node));
    if (before) construct.moveFromId(`${construct.terraformResourceType}.${makeUniqueId(before)}`);
  }
}

/**
 * The folder of an asset that moved keeps its name: a Lambda function's `filename` is that folder, and a new one
 * would update the function's code (the same code) for nothing. Undefined for anything else.
 */
export function assetFolderBeforeMove(stack: TerraformStack, node: Node): string | undefined {
  const construct: IConstruct | undefined = node.scopes[node.scopes.length - 1];
  if (!(construct instanceof TerraformAsset)) return undefined;
  const before = previousPath(componentsUnder(stack, node));
  return before ? makeUniqueId(before) : undefined;
}
