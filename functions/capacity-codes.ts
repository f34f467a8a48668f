/** Service Quotas codes of the Fargate vCPU quotas (service code `fargate`), per capacity provider. SDK-free: synth reads it. */
export const FARGATE_QUOTA_CODE = { FARGATE: 'L-3032A538', FARGATE_SPOT: 'L-36FBB829' } as const;
/** The AWS/Usage `Class` dimension of each provider's vCPU. */
export const USAGE_CLASS = { FARGATE: 'Standard/OnDemand', FARGATE_SPOT: 'Standard/Spot' } as const;

/** A Fargate capacity class, named as its capacity provider. */
export type CapacityClass = keyof typeof FARGATE_QUOTA_CODE;
export const CAPACITY_CLASSES = Object.keys(FARGATE_QUOTA_CODE) as CapacityClass[];
