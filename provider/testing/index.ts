export * from "./labHost";
export * from "./runner";
