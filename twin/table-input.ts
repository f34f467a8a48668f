import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

/**
 * A synthesized `aws_dynamodb_table` (Terraform's JSON, references resolved) as the CreateTable input that makes the
 * same table: keys, attributes and global secondary indexes, on demand. The one translation of the stage's tables:
 * the twin creates its tables with it, and the tests' DynamoDB servers theirs (__tests__/support/dynalite.ts).
 */
export function tableInput(t: Record<string, any>): CreateTableCommandInput {
  const keySchema: Array<{ AttributeName: string; KeyType: 'HASH' | 'RANGE' }> = [{ AttributeName: String(t.hash_key), KeyType: 'HASH' }];
  if (t.range_key) keySchema.push({ AttributeName: String(t.range_key), KeyType: 'RANGE' as const });
  const gsis = (t.global_secondary_index ?? []) as Array<Record<string, any>>;
  return {
    TableName: String(t.name),
    BillingMode: 'PAY_PER_REQUEST',
    KeySchema: keySchema,
    AttributeDefinitions: (t.attribute ?? []).map((a: { name: string; type: 'S' | 'N' | 'B' }) => ({ AttributeName: a.name, AttributeType: a.type })),
    GlobalSecondaryIndexes:
      gsis.length > 0
        ? gsis.map((g) => ({
            IndexName: String(g.name),
            KeySchema: [
              { AttributeName: String(g.hash_key), KeyType: 'HASH' as const },
              ...(g.range_key ? [{ AttributeName: String(g.range_key), KeyType: 'RANGE' as const }] : []),
            ],
            Projection: {
              ProjectionType: (g.projection_type ?? 'ALL') as 'ALL' | 'INCLUDE' | 'KEYS_ONLY',
              ...(g.non_key_attributes ? { NonKeyAttributes: [...g.non_key_attributes] } : {}),
            },
          }))
        : undefined,
  };
}
