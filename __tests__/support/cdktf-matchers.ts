import { Testing } from 'cdktf';

// Adds toHaveResource, toHaveResourceWithProperties, toBeValidTerraform… to expect.
Testing.setupJest();
