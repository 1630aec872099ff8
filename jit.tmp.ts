import { compileQuery, isCompiledQuery } from 'graphql-jit';
import { parse } from 'graphql';
import { schema } from './src/schema/index.ts';
const doc = parse(`query List20($instanceId: String!, $consumerId: String!, $provider: String!) { instance(instanceId: $instanceId) { authenticationTokens(consumerId: $consumerId, credentialProviderIdentifier: $provider, first: 20) { nodes { authenticationTokenId expiresAt revoked } } } }`);
const c: any = compileQuery(schema, doc, 'List20', { debug: true } as any);
if (!isCompiledQuery(c)) throw c;
console.log(Object.keys(c));
console.log(String(c.__DO_NOT_USE_THIS_OR_YOU_WILL_BE_FIRED_compilation ?? c.query).slice(0, 6000));
