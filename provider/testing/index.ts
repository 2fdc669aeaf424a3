export * from "./fingerprint";
export * from "./labHost";
export * from "./pulumiStack";
