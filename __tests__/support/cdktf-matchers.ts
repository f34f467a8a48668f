import { Testing } from 'cdktf';
// The matchers' types (a global `jest.Matchers` augmentation) live in this file; setupJest() only adds them at run time.
import type {} from 'cdktf/lib/testing/adapters/jest';

// Adds toHaveResource, toHaveResourceWithProperties, toBeValidTerraform… to expect.
Testing.setupJest();
