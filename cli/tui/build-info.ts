/** Set to true by the compiled TUI's build (cli/tui/bundle-cache.ts); absent when run from sources. */
declare const __MECHANIC_TUI_COMPILED__: boolean | undefined;

/** Whether this TUI runs from the compiled cache (fast start) or from the sources through tsx. */
export const COMPILED: boolean = typeof __MECHANIC_TUI_COMPILED__ !== 'undefined' && __MECHANIC_TUI_COMPILED__;
