// How the gateway validates requests against their route schemas: fastify's own Ajv compiler
// (@fastify/ajv-compiler), nothing coerced, except one thing. A query string is text, so a
// parameter whose schema says `integer` is turned into a number when it is written in decimal
// digits (`?limit=10`), before validation: the OpenAPI document tells generated clients an
// integer, and anything else (`Infinity`, `1e3`, `0x10`, ` 5`, `-1`, an empty value) stays text
// and fails `integer`, as Ajv's own coercion would not (it lets `Infinity` through as a number).
// Bodies, params and headers are never converted: a JSON body's `"10"` is not a number.
import { AjvCompiler, type ValidatorFactory } from '@fastify/ajv-compiler';

/** The Ajv options of fastify's `ajv` option. */
export const STRICT_AJV_OPTIONS = {
  coerceTypes: false,
  useDefaults: true,
  removeAdditional: false,
} as const;

/** Decimal digits a query-string integer is written in (at most 15: epoch ms fit). */
const DIGITS = /^[0-9]{1,15}$/;

/** The top-level properties of a query-string schema that are integers. */
function integerProperties(schema: unknown): string[] {
  if (typeof schema !== 'object' || schema === null) return [];
  const properties = (schema as { properties?: Record<string, { type?: unknown }> }).properties;
  if (properties === undefined) return [];
  return Object.keys(properties).filter((name) => properties[name]?.type === 'integer');
}

/** fastify's `schemaController.compilersFactory.buildValidator`, one for each app: Ajv
 *  instances are pooled by shared schemas and options across the app's encapsulated plugins,
 *  as fastify's default does. */
export function validatorFactory(): ValidatorFactory {
  const compilers = AjvCompiler();
  return (externalSchemas, options) => {
    const compile = compilers(externalSchemas, options);
    return (route) => {
      const validate = compile(route);
      const integers = route.httpPart === 'querystring' ? integerProperties(route.schema) : [];
      if (integers.length === 0) return validate;
      const withNumbers = (data: unknown) => {
        if (typeof data === 'object' && data !== null) {
          const query = data as Record<string, unknown>;
          for (const name of integers) {
            const value = query[name];
            if (typeof value === 'string' && DIGITS.test(value)) query[name] = Number(value);
          }
        }
        return validate(data);
      };
      // fastify reads the errors of the last call from the function it was given
      return Object.defineProperty(withNumbers, 'errors', {
        get: () => validate.errors,
      }) as unknown as typeof validate;
    };
  };
}
