// What a document may be, checked at parse and validation time: GraphQL Armor's limits (tokens,
// depth, aliases, directives, cost), no introspection while INTROSPECTION is off, and no field
// suggestions in errors then either (they would leak the schema). Armor's own envelop plugin adds
// one validation hook per limit, each making its rule again on every request, and yoga's
// introspection plugin adds a request-parse hook as well; here the rules are made once, at
// start-up, and added by one hook. Yoga caches each document's validation result, so the rules
// themselves run once per document, not per request.
// Refusals are validation errors (HTTP 400), except the token limit, which is a syntax error.
import { GraphQLError, NoSchemaIntrospectionCustomRule, type ValidationContext, type ValidationRule } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { blockFieldSuggestionsDefaultOptions } from '@escape.tech/graphql-armor-block-field-suggestions';
import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import type { GatewayConfig } from './config.ts';

/** Armor's refusals reported as validation errors: HTTP 400 like any other invalid document. */
const asValidationError = {
  propagateOnRejection: false,
  onReject: [(ctx: ValidationContext | null, error: GraphQLError) => ctx?.reportError(error)],
};

type AfterValidate = Exclude<ReturnType<NonNullable<Plugin['onValidate']>>, void>;

const SUGGESTION = /Did you mean ".+"\?/g;

/** Validation errors without "Did you mean …?" (armor's block-field-suggestions, as one function). */
const withoutSuggestions: AfterValidate = ({ valid, result, setResult }) => {
  if (valid) return;
  setResult(
    result.map((error) => {
      if (error instanceof GraphQLError) error.message = error.message.replace(SUGGESTION, blockFieldSuggestionsDefaultOptions.mask).trim();
      return error;
    }),
  );
};

export function useDocumentLimits(limits: GatewayConfig['limits'], introspection: boolean): Plugin[] {
  const rules: ValidationRule[] = [
    maxDirectivesRule({ n: limits.maxDirectives, ...asValidationError }),
    maxAliasesRule({ n: limits.maxAliases, ...asValidationError }),
    costLimitRule({ maxCost: limits.maxCost, ignoreIntrospection: true, ...asValidationError }),
    maxDepthRule({ n: limits.maxDepth, ignoreIntrospection: true, ...asValidationError }),
    ...(introspection ? [] : [NoSchemaIntrospectionCustomRule]),
  ];
  return [
    maxTokensPlugin({ n: limits.maxTokens }) as Plugin,
    {
      onValidate({ addValidationRule }) {
        for (const rule of rules) addValidationRule(rule);
        return introspection ? undefined : withoutSuggestions;
      },
    },
  ];
}
