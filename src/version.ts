// Kept equal to package.json "version" (a test checks it), so that no file is read at startup.
export const PACKAGE_VERSION = '0.1.0';
