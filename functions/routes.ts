export interface RouteSettings {
  readonly name: string;
  readonly queueUrl: string;
  readonly inputPrefix: string;
  readonly inputSuffix?: string;
  readonly share: number;
  readonly priority: number;
  readonly maxVcpu?: number;
}
export const RELEASED_BY_ROUTE = 'releasedVcpu@route:';
