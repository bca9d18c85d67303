#!/usr/bin/env node
// The byte layout both hot-path engines share has one source:
// stack/hotpath/layout.ts. This writes its AssemblyScript twin,
// assembly/layout.generated.ts, before every Wasm build (npm run build:wasm),
// so the two can never drift apart:
// - `export const NAME = <expr>` with a numeric value becomes
//   `export const NAME: u32 = <expr>;` (the expression is kept: it only names
//   constants defined above it);
// - each member of `export const enum X { M = n }` becomes
//   `export const <PREFIX>_<M>: u32 = n;`, PREFIX from ENUM_PREFIX below
//   (Reason.TcpBadFlags -> R_TCP_BAD_FLAGS; D.TCP_SEQ -> D_TCP_SEQ).
// Anything else (arrays of names, types) has no use in the engine and is skipped.
// Uses the TypeScript compiler the project builds with; no other dependency.

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE = 'stack/hotpath/layout.ts';
const TARGET = 'assembly/layout.generated.ts';

/** Prefix of each enum's members in AssemblyScript. */
const ENUM_PREFIX = { Kind: 'KIND', Reason: 'R', D: 'D', E: 'E', ArenaHeader: 'ARENA_H', T: 'T', TF: 'TF', X: 'X', State: 'STATE', TE: 'TE', F: 'F', Slow: 'SLOW', FA: 'FA', Burst: 'BURST', Q: 'Q' };

/** PascalCase or camelCase to UPPER_SNAKE (TcpBadFlags -> TCP_BAD_FLAGS); UPPER_SNAKE stays. */
function upperSnake(name) {
  if (/^[A-Z0-9_]+$/.test(name)) return name;
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/([A-Z])([A-Z][a-z])/g, '$1_$2').toUpperCase();
}

function isNumeric(expr, known) {
  if (ts.isNumericLiteral(expr)) return true;
  if (ts.isIdentifier(expr)) return known.has(expr.text);
  if (ts.isParenthesizedExpression(expr)) return isNumeric(expr.expression, known);
  if (ts.isPrefixUnaryExpression(expr)) return isNumeric(expr.operand, known);
  if (ts.isBinaryExpression(expr)) return isNumeric(expr.left, known) && isNumeric(expr.right, known);
  return false;
}

const text = readFileSync(join(root, SOURCE), 'utf8');
const source = ts.createSourceFile(SOURCE, text, ts.ScriptTarget.ES2022, true);
const known = new Set();
const lines = [
  `// GENERATED from ${SOURCE} by scripts/gen-assembly-layout.mjs before every`,
  '// Wasm build: do not edit. Change the layout there; both engines follow.',
  '',
];

for (const statement of source.statements) {
  const exported = statement.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
  if (!exported) continue;
  if (ts.isVariableStatement(statement)) {
    for (const decl of statement.declarationList.declarations) {
      if (!ts.isIdentifier(decl.name) || !decl.initializer || !isNumeric(decl.initializer, known)) continue;
      known.add(decl.name.text);
      lines.push(`export const ${decl.name.text}: u32 = ${decl.initializer.getText(source)};`);
    }
  } else if (ts.isEnumDeclaration(statement)) {
    const prefix = ENUM_PREFIX[statement.name.text] ?? upperSnake(statement.name.text);
    lines.push('', `// ${statement.name.text} (layout.ts)`);
    let next = 0;
    for (const member of statement.members) {
      const init = member.initializer;
      let value = next;
      if (init) {
        // A literal, or arithmetic of literals (1 << 4): nothing else is allowed.
        if (!isNumeric(init, new Set())) throw new Error(`${SOURCE}: ${statement.name.text}.${member.name.getText(source)} needs a numeric value`);
        value = Function(`return (${init.getText(source)});`)() >>> 0;
      }
      next = value + 1;
      lines.push(`export const ${prefix}_${upperSnake(member.name.getText(source))}: u32 = ${value};`);
    }
    lines.push('');
  }
}

writeFileSync(join(root, TARGET), lines.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n');
