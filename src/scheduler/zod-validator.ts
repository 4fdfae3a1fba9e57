import type { FastifySchemaCompiler } from 'fastify';
import type { ZodType } from 'zod';
import { describeZodError } from '../bus/messages';
import { InvalidInputError } from '../core/errors';

/**
 * Fastify's schema hook with zod: a route's `schema.querystring` /
 * `schema.params` is a zod schema; a request that fails it gets a 400 whose
 * message names the field, and the handler sees the parsed, defaulted value.
 */
export const zodValidatorCompiler: FastifySchemaCompiler<ZodType> = ({ schema, httpPart }) => {
  return (data: unknown) => {
    const parsed = schema.safeParse(data);
    if (parsed.success) return { value: parsed.data };
    const where = httpPart === 'querystring' ? 'query' : (httpPart ?? 'request');
    return { error: new InvalidInputError(where, describeZodError(parsed.error)) };
  };
};
