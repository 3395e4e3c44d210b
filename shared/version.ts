// The release version, compiled in so the single-file agent needs no package.json beside it.
// test/shared/version.test.ts keeps it equal to package.json's.
export const VERSION = '0.1.0';
