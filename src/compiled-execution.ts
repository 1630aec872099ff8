// Compiled execution (graphql-jit): each document is compiled once into a function that
// resolves its selection set directly, instead of graphql-js walking the AST and building a
// resolve info for every field on every request. Kept to graphql-js's behaviour where it differs:
//   - a request that fails before execution (variable coercion) is run again by the default
//     executor, which writes graphql-js's messages with the variable's name and path;
//   - a leaf value that cannot be serialized is an execution fault: useContractErrorCodes masks
//     every error with a path and no contract code as INTERNAL_SERVER_ERROR.
// Compiled queries are cached by DocumentNode, in a WeakMap: yoga's parser cache hands out the
// same DocumentNode for the same text, and when it evicts one, its compiled queries go too.
// Trusted documents (src/http/persisted-operations.ts) are compiled at start-up (precompile):
// their requests carry the manifest's own DocumentNode, so they always find it compiled.
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';
import { Kind, type DocumentNode, type ExecutionResult, type GraphQLSchema } from 'graphql';
import type { Plugin } from 'graphql-yoga';

type Compiled = CompiledQuery | false;

export type CompiledExecutionPlugin = Plugin & {
  /**
   * Compiles a document's operations now: by name, and (for a document of one operation) without
   * one, as requests may name it or not.
   */
  precompile(schema: GraphQLSchema, document: DocumentNode): void;
};

export function useCompiledExecution(options: { onCompileError?: (errors: readonly Error[]) => void } = {}): CompiledExecutionPlugin {
  const byDocument = new WeakMap<DocumentNode, Map<string, Compiled>>();

  function compiledFor(schema: Parameters<typeof compileQuery>[0], document: DocumentNode, operationName?: string | null): Compiled {
    let byOperation = byDocument.get(document);
    if (!byOperation) byDocument.set(document, (byOperation = new Map()));
    const key = operationName ?? '';
    let compiled = byOperation.get(key);
    if (compiled === undefined) {
      const result = compileQuery(schema, document, operationName ?? undefined);
      if (isCompiledQuery(result)) compiled = result;
      else {
        // A document graphql-jit cannot compile runs on the default executor, which reports
        // whatever is wrong with it the usual way.
        options.onCompileError?.(result.errors ?? []);
        compiled = false;
      }
      byOperation.set(key, compiled);
    }
    return compiled;
  }

  return {
    precompile(schema, document) {
      const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
      for (const operation of operations) if (operation.name) compiledFor(schema, document, operation.name.value);
      if (operations.length === 1) compiledFor(schema, document, null);
    },
    onExecute({ args, executeFn, setExecuteFn }) {
      const compiled = compiledFor(args.schema, args.document, args.operationName);
      if (!compiled) return;
      setExecuteFn((execArgs) => {
        // No `data` at all: the request failed before execution (its variables).
        const settle = (result: ExecutionResult) => (result.data === undefined && result.errors?.length ? executeFn(execArgs) : result);
        const result = compiled.query(execArgs.rootValue, execArgs.contextValue, execArgs.variableValues) as ExecutionResult | Promise<ExecutionResult>;
        return result instanceof Promise ? result.then(settle) : settle(result);
      });
    },
  };
}
