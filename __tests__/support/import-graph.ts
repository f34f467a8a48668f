import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import * as ts from 'typescript';

export const ROOT = join(__dirname, '..', '..');
const SKIPPED = new Set(['node_modules', 'cdktf.out', 'dist', 'variants', 'sim-out', '.git']);

/** Every TypeScript source of the project (declaration files aside), as absolute paths. */
export function sources(dir: string = ROOT): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (SKIPPED.has(name)) return [];
    if (statSync(path).isDirectory()) return sources(path);
    return /\.ts$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** What one file loads: project files (absolute paths) and packages (their specifiers; Node's built-ins left out). */
export interface Imports {
  readonly files: string[];
  readonly packages: string[];
  /** Relative specifiers that name no file: a check that cannot see an import must not pass it. */
  readonly unresolved: string[];
}

/** The specifiers a file names: imports and re-exports (types too: they say which module depends on which), import() and require(). */
function specifiers(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier))
      found.push(node.moduleSpecifier.text);
    if (
      ts.isCallExpression(node) &&
      (node.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(node.expression) && node.expression.text === 'require')) &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    )
      found.push(node.arguments[0].text);
    if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression))
      found.push(node.moduleReference.expression.text);
    if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) found.push(node.argument.literal.text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The file a relative specifier loads: TypeScript's own resolution (`x` → `x.ts`, `x/index.ts`), or a file named in full. */
function resolveRelative(file: string, specifier: string): string | undefined {
  const path = join(dirname(file), specifier);
  return [`${path}.ts`, join(path, 'index.ts'), path].find((candidate) => existsSync(candidate) && statSync(candidate).isFile());
}

export function importsOf(file: string): Imports {
  const all = specifiers(file);
  const relativeOnes = all.filter((s) => s.startsWith('.'));
  return {
    files: relativeOnes.map((s) => resolveRelative(file, s)).filter((f): f is string => f !== undefined),
    packages: all.filter((s) => !s.startsWith('.') && !s.startsWith('node:')),
    unresolved: relativeOnes.filter((s) => resolveRelative(file, s) === undefined),
  };
}

/** The project's import graph, keyed and valued by paths relative to the repository root. */
export function importGraph(): Map<string, Imports> {
  return new Map(
    sources().map((file) => {
      const { files, packages, unresolved } = importsOf(file);
      return [relative(ROOT, file), { files: files.map((f) => relative(ROOT, f)), packages, unresolved }];
    }),
  );
}
