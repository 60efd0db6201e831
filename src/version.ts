/** The program version, printed by `kumo --version` and exposed as `kumo.version`. */
export const VERSION = "0.1.0";
