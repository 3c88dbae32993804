// Copies the non-TypeScript files the code loads at run time into dist/ (the Lua scripts).
import { cpSync } from 'node:fs';

cpSync('src/meta/lua', 'dist/src/meta/lua', { recursive: true });
