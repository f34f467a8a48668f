/**
 * The AWS service behind each Terraform resource (or data source) type sluice's stacks use, by type prefix, under
 * the two names it goes by: its IAM service prefix (what a plan role must be allowed to read) and the AWS provider's
 * endpoint key (what an emulator must answer for). An unknown type has neither: the checks that use this say so.
 */
interface AwsService {
  readonly iam: string;
  readonly endpoint: string;
}

const SERVICE_OF_PREFIX: ReadonlyArray<readonly [string, AwsService]> = [
  ['aws_cloudwatch_event_', { iam: 'events', endpoint: 'events' }],
  ['aws_cloudwatch_log_', { iam: 'logs', endpoint: 'logs' }],
  ['aws_cloudwatch_metric_alarm', { iam: 'cloudwatch', endpoint: 'cloudwatch' }],
  ['aws_cloudwatch_dashboard', { iam: 'cloudwatch', endpoint: 'cloudwatch' }],
  ['aws_dynamodb_', { iam: 'dynamodb', endpoint: 'dynamodb' }],
  ['aws_ecr_', { iam: 'ecr', endpoint: 'ecr' }],
  ['aws_ecs_', { iam: 'ecs', endpoint: 'ecs' }],
  ['aws_iam_', { iam: 'iam', endpoint: 'iam' }],
  ['aws_lambda_', { iam: 'lambda', endpoint: 'lambda' }],
  ['aws_s3_', { iam: 's3', endpoint: 's3' }],
  ['aws_sfn_', { iam: 'states', endpoint: 'sfn' }],
  ['aws_sns_', { iam: 'sns', endpoint: 'sns' }],
  ['aws_sqs_', { iam: 'sqs', endpoint: 'sqs' }],
  ['aws_vpc', { iam: 'ec2', endpoint: 'ec2' }],
  ['aws_subnet', { iam: 'ec2', endpoint: 'ec2' }],
  ['aws_route_table', { iam: 'ec2', endpoint: 'ec2' }],
  ['aws_security_group', { iam: 'ec2', endpoint: 'ec2' }],
];

export function awsServiceOf(terraformType: string): AwsService | undefined {
  return SERVICE_OF_PREFIX.find(([prefix]) => terraformType.startsWith(prefix))?.[1];
}
