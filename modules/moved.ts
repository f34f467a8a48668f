import { TerraformResource, type TerraformStack } from 'cdktf';

/**
 * Resources whose construct moved, by their path under the stack now, and the address a stage applied before the
 * move holds them at: the functions the single `Dispatch` construct held are `Admission`'s and `Janitor`'s, and the
 * dispatcher's wake-up on uploads is the intake's. Frozen: these are the addresses in applied stages' state, whatever
 * cdktf would name the old paths today; a resource added later under these constructs has no address before.
 * Once every stage has applied a version with these blocks, they can go.
 */
export const MOVED_RESOURCES: ReadonlyMap<string, string> = new Map([
  ['admission/capacity-every-minute-permission', 'aws_lambda_permission.dispatch_capacity-every-minute-permission_D2C0A211'],
  ['admission/capacity-every-minute-rule', 'aws_cloudwatch_event_rule.dispatch_capacity-every-minute-rule_11398686'],
  ['admission/capacity-every-minute-target', 'aws_cloudwatch_event_target.dispatch_capacity-every-minute-target_3288A23D'],
  ['admission/capacity/function', 'aws_lambda_function.dispatch_capacity_function_49351822'],
  ['admission/capacity/logs', 'aws_cloudwatch_log_group.dispatch_capacity_logs_8736CD46'],
  ['admission/capacity/policy', 'aws_iam_role_policy.dispatch_capacity_policy_49C4487B'],
  ['admission/capacity/role', 'aws_iam_role.dispatch_capacity_role_B4AE9DC6'],
  ['admission/configure-pool/function', 'aws_lambda_function.dispatch_configure-pool_function_E376F5AF'],
  ['admission/configure-pool/logs', 'aws_cloudwatch_log_group.dispatch_configure-pool_logs_ED16F9E2'],
  ['admission/configure-pool/policy', 'aws_iam_role_policy.dispatch_configure-pool_policy_82B839E1'],
  ['admission/configure-pool/role', 'aws_iam_role.dispatch_configure-pool_role_CCC86F13'],
  ['admission/dispatch-every-minute-permission', 'aws_lambda_permission.dispatch_dispatch-every-minute-permission_48460826'],
  ['admission/dispatch-every-minute-rule', 'aws_cloudwatch_event_rule.dispatch_dispatch-every-minute-rule_A557DF5E'],
  ['admission/dispatch-every-minute-target', 'aws_cloudwatch_event_target.dispatch_dispatch-every-minute-target_7E829C73'],
  ['admission/dispatcher-async', 'aws_lambda_function_event_invoke_config.dispatch_dispatcher-async_FE847BF4'],
  ['admission/dispatcher/function', 'aws_lambda_function.dispatch_dispatcher_function_F61E753E'],
  ['admission/dispatcher/logs', 'aws_cloudwatch_log_group.dispatch_dispatcher_logs_BB166DA0'],
  ['admission/dispatcher/policy', 'aws_iam_role_policy.dispatch_dispatcher_policy_510461FD'],
  ['admission/dispatcher/role', 'aws_iam_role.dispatch_dispatcher_role_B9FB6B36'],
  ['admission/seed-pool', 'aws_lambda_invocation.dispatch_seed-pool_A083AF07'],
  ['intake/dispatch-on-upload-permission', 'aws_lambda_permission.dispatch_dispatch-on-upload-permission_54396CFC'],
  ['intake/dispatch-on-upload-target', 'aws_cloudwatch_event_target.dispatch_dispatch-on-upload-target_86BFBD59'],
  ['janitor/janitor-every-5-minutes-permission', 'aws_lambda_permission.dispatch_janitor-every-5-minutes-permission_23B353C3'],
  ['janitor/janitor-every-5-minutes-rule', 'aws_cloudwatch_event_rule.dispatch_janitor-every-5-minutes-rule_1A9C09A3'],
  ['janitor/janitor-every-5-minutes-target', 'aws_cloudwatch_event_target.dispatch_janitor-every-5-minutes-target_5F8E04B6'],
  ['janitor/janitor-on-execution-end-permission', 'aws_lambda_permission.dispatch_janitor-on-execution-end-permission_AA0EC862'],
  ['janitor/janitor-on-execution-end-rule', 'aws_cloudwatch_event_rule.dispatch_janitor-on-execution-end-rule_47817696'],
  ['janitor/janitor-on-execution-end-target', 'aws_cloudwatch_event_target.dispatch_janitor-on-execution-end-target_EDE73759'],
  ['janitor/janitor/function', 'aws_lambda_function.dispatch_janitor_function_6DEB39CF'],
  ['janitor/janitor/logs', 'aws_cloudwatch_log_group.dispatch_janitor_logs_D02FCC8D'],
  ['janitor/janitor/policy', 'aws_iam_role_policy.dispatch_janitor_policy_4156D95E'],
  ['janitor/janitor/role', 'aws_iam_role.dispatch_janitor_role_85ACE151'],
]);

/** A construct's path under its stack. */
function pathUnder(stack: TerraformStack, construct: TerraformResource): string {
  const { scopes } = construct.node;
  return scopes
    .slice(scopes.indexOf(stack) + 1)
    .map((scope) => scope.node.id)
    .join('/');
}

/**
 * Every resource of the stack that moved gets a `moved` block from its address before: an applied stage re-plans
 * with moves, nothing destroyed and created again.
 */
export function recordMoves(stack: TerraformStack): void {
  for (const construct of stack.node.findAll()) {
    if (!TerraformResource.isTerraformResource(construct)) continue;
    const before = MOVED_RESOURCES.get(pathUnder(stack, construct));
    if (before) construct.moveFromId(before);
  }
}
