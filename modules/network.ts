import { RouteTable } from '@cdktf/provider-aws/lib/route-table';
import { RouteTableAssociation } from '@cdktf/provider-aws/lib/route-table-association';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { Subnet } from '@cdktf/provider-aws/lib/subnet';
import { Vpc } from '@cdktf/provider-aws/lib/vpc';
import { VpcEndpoint } from '@cdktf/provider-aws/lib/vpc-endpoint';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule';
import { Fn } from 'cdktf';
import { Construct } from 'constructs';
import type { EnvironmentConfig } from '../environments';
import { partitionOf } from '../environments/partition';
import { policyJson } from './iam';

interface NetworkProps {
  /** Its `network`: existing subnets, or the VPC to create; its account and region, for the endpoints' policies. */
  readonly config: EnvironmentConfig;
}

/** One way out of the tasks' security group (HTTPS only): a destination prefix list or CIDR. */
type TaskEgress = { readonly description: string } & ({ readonly prefixListId: string } | { readonly cidrIpv4: string });

type CreatedNetwork = Extract<EnvironmentConfig['network'], { kind: 'create' }>;

/** Interface endpoints a Fargate task without a public IP needs to pull from ECR and write logs. */
const INTERFACE_ENDPOINT_SERVICES = ['ecr.api', 'ecr.dkr', 'logs'] as const;

/**
 * Where tasks run: existing private subnets, or a small private VPC (two zones, no NAT, no internet)
 * whose endpoints give tasks S3, ECR and CloudWatch Logs — and nothing else: the endpoints admit only this
 * account's buckets and principals (and ECR's layer bucket), and the tasks may reach only the endpoints. A task
 * whose parser an upload subverts has no way to another account's bucket. In an existing network the tasks reach
 * what its routes reach, on HTTPS: its owners decide (docs/security.md, M5).
 */
export class Network extends Construct {
  readonly vpcId: string;
  readonly privateSubnetIds: string[];
  /** Where the tasks may open HTTPS connections. */
  readonly taskEgress: TaskEgress[];

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    const { network, namePrefix } = props.config;
    const { region, id: accountId } = props.config.account;
    if (network.kind === 'existing') {
      this.vpcId = network.vpcId;
      this.privateSubnetIds = [...network.privateSubnetIds];
      this.taskEgress = [{ description: 'HTTPS out, where the existing network routes it (S3, ECR, CloudWatch Logs)', cidrIpv4: '0.0.0.0/0' }];
      return;
    }
    const { vpc, routes, subnets } = this.privateVpc(network, namePrefix);
    const s3 = this.s3GatewayEndpoint(vpc, routes, region, accountId, namePrefix);
    this.interfaceEndpoints(vpc, subnets, region, accountId, namePrefix);
    this.vpcId = vpc.id;
    this.privateSubnetIds = subnets.map((s) => s.id);
    this.taskEgress = [
      { description: 'HTTPS to S3 through the gateway endpoint', prefixListId: s3.prefixListId },
      { description: 'HTTPS to the ECR and CloudWatch Logs interface endpoints', cidrIpv4: vpc.cidrBlock },
    ];
  }

  /** The VPC and one private subnet per zone, all on one route table with no route out. */
  private privateVpc(network: CreatedNetwork, namePrefix: string): { vpc: Vpc; routes: RouteTable; subnets: Subnet[] } {
    const vpc = new Vpc(this, 'vpc', {
      cidrBlock: network.cidr,
      enableDnsHostnames: true, // interface endpoints' private DNS needs both
      enableDnsSupport: true,
      tags: { Name: `${namePrefix}-vpc` },
    });
    const routes = new RouteTable(this, 'private-routes', { vpcId: vpc.id, tags: { Name: `${namePrefix}-private` } });
    const subnets = network.availabilityZones.map((zone, index) => {
      const subnet = new Subnet(this, `private-${zone}`, {
        vpcId: vpc.id,
        availabilityZone: zone,
        cidrBlock: Fn.cidrsubnet(vpc.cidrBlock, 4, index),
        mapPublicIpOnLaunch: false,
        tags: { Name: `${namePrefix}-private-${zone}` },
      });
      new RouteTableAssociation(this, `private-${zone}-routes`, { subnetId: subnet.id, routeTableId: routes.id });
      return subnet;
    });
    return { vpc, routes, subnets };
  }

  /**
   * S3 through a gateway endpoint on the route table: no NAT, and no charge per GB. Its policy admits this account's
   * buckets only, and the bucket ECR serves image layers from ("Amazon ECR interface VPC endpoints": the
   * `prod-<region>-starport-layer-bucket`); by default an endpoint allows everything, to any bucket.
   */
  private s3GatewayEndpoint(vpc: Vpc, routes: RouteTable, region: string, accountId: string, namePrefix: string): VpcEndpoint {
    return new VpcEndpoint(this, 'endpoint-s3', {
      vpcId: vpc.id,
      serviceName: `com.amazonaws.${region}.s3`,
      vpcEndpointType: 'Gateway',
      routeTableIds: [routes.id],
      policy: policyJson(
        {
          Sid: 'ThisAccountsBuckets',
          Effect: 'Allow',
          Principal: '*',
          Action: 's3:*',
          Resource: '*',
          Condition: { StringEquals: { 'aws:ResourceAccount': accountId } },
        },
        {
          Sid: 'EcrImageLayers',
          Effect: 'Allow',
          Principal: '*',
          Action: 's3:GetObject',
          Resource: `arn:${partitionOf(region)}:s3:::prod-${region}-starport-layer-bucket/*`,
        },
      ),
      tags: { Name: `${namePrefix}-s3` },
    });
  }

  /**
   * ECR and CloudWatch Logs through interface endpoints in the subnets, reachable over HTTPS from the VPC only, for
   * this account's principals only (the tasks' execution role pulls the image and writes the logs).
   */
  private interfaceEndpoints(vpc: Vpc, subnets: Subnet[], region: string, accountId: string, namePrefix: string): void {
    const endpointGroup = new SecurityGroup(this, 'endpoints', {
      name: `${namePrefix}-endpoints`,
      description: 'HTTPS from inside the VPC to the interface endpoints',
      vpcId: vpc.id,
      tags: { Name: `${namePrefix}-endpoints` },
    });
    new VpcSecurityGroupIngressRule(this, 'endpoints-https', {
      securityGroupId: endpointGroup.id,
      description: 'HTTPS from the VPC',
      ipProtocol: 'tcp',
      fromPort: 443,
      toPort: 443,
      cidrIpv4: vpc.cidrBlock,
    });
    for (const service of INTERFACE_ENDPOINT_SERVICES) {
      new VpcEndpoint(this, `endpoint-${service.replace('.', '-')}`, {
        vpcId: vpc.id,
        serviceName: `com.amazonaws.${region}.${service}`,
        vpcEndpointType: 'Interface',
        privateDnsEnabled: true,
        subnetIds: subnets.map((s) => s.id),
        securityGroupIds: [endpointGroup.id],
        policy: policyJson({
          Sid: 'ThisAccountsPrincipals',
          Effect: 'Allow',
          Principal: '*',
          Action: '*',
          Resource: '*',
          Condition: { StringEquals: { 'aws:PrincipalAccount': accountId } },
        }),
        tags: { Name: `${namePrefix}-${service}` },
      });
    }
  }
}
