import type { Processor } from './processor';
import { defaultProcessor } from './processors/default-processor';

// The one line to change to run your own processing: export your Processor here.
// e.g. `import { myProcessor } from './processors/my-processor';` and `= myProcessor`.
export const activeProcessor: Processor = defaultProcessor;
