// The EC2 Query endpoint: any path, GET or POST, `Action=…&Version=…` in the query string or a
// form-encoded body. One table of actions; every failure is rendered once, as EC2's XML error.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SignatureVerifier } from './auth.ts';
import { Ec2Error } from './errors.ts';
import { parseForm, type Params } from './params.ts';
import { envelope, errorDocument } from './xml.ts';
import type { ActionContext, ActionDef, Ec2Services } from './actions/context.ts';
import { accountActions } from './actions/account.ts';
import { discoverImages, imageActions } from './actions/images.ts';
import { discoverInstances, instanceActions } from './actions/instances.ts';
import { keyPairActions } from './actions/keypairs.ts';
import { tagActions } from './actions/tags.ts';
import { StratusError } from '../common/errors.ts';

export const ACTIONS: Record<string, ActionDef> = { ...accountActions, ...imageActions, ...instanceActions, ...keyPairActions, ...tagActions };

/**
 * EC2 actions this cloud knows but does not offer (VPC networking, security groups, volumes,
 * addresses, spot…): UnsupportedOperation rather than InvalidAction, so a client learns the
 * action exists in the API but not here.
 */
const UNSUPPORTED = /^(Create|Delete|Describe|Modify|Associate|Disassociate|Attach|Detach|Allocate|Release|Authorize|Revoke|Copy|Import|Export|Request|Cancel|Register|Reset|Replace|Enable|Disable|Get|Monitor|Unmonitor|Purchase|Accept|Reject|Run|Start|Stop|Restore|Search|Apply|Assign|Unassign|Confirm|Bundle|Report|Send|Provision|Deprovision|Move|Advertise|Withdraw)[A-Z][A-Za-z0-9]*$/;

export interface RouterDeps extends Ec2Services {
  verifier: SignatureVerifier;
}

const awsRequestId = (req: FastifyRequest) => req.id.replace(/^req-/, '');

function sendXml(reply: FastifyReply, status: number, xml: string): FastifyReply {
  return reply.code(status).type('text/xml;charset=UTF-8').send(xml);
}

/** Anything thrown, as an EC2 error: ours as is, the HTTP layer's by status, bugs as InternalError. */
function toEc2Error(e: unknown): Ec2Error {
  if (e instanceof Ec2Error) return e;
  const status = e instanceof StratusError ? e.status : (e as FastifyError)?.statusCode;
  const msg = (e as Error)?.message ?? 'error';
  if (status === 413) return new Ec2Error('InvalidParameterValue', 'The request body is larger than the limit', 413);
  if (status === 415) return new Ec2Error('InvalidParameterValue', `Unsupported content type: ${msg}`, 415);
  if (status !== undefined && status >= 400 && status < 500) return new Ec2Error('InvalidParameterValue', msg);
  if (status === 503) return new Ec2Error('Unavailable', `The service is unavailable: ${msg}`, 503);
  return new Ec2Error('InternalError', 'An internal error has occurred', 500);
}

export async function registerEc2Routes(scope: FastifyInstance, deps: RouterDeps): Promise<void> {
  // A child context so this error handler replaces the service mount's JSON one.
  await scope.register(async (app) => {
    app.setErrorHandler((error, req, reply) => {
      const e = toEc2Error(error);
      if (e.status >= 500) req.log.error({ err: error }, 'EC2 request failed');
      return sendXml(reply, e.status, errorDocument(e.code, e.message, awsRequestId(req)));
    });
    // Query API bodies are form-encoded; the signature covers them byte for byte, so keep the text.
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    app.addHook('onSend', async (req, reply) => { reply.header('x-amzn-requestid', awsRequestId(req)); });

    const handle = async (req: FastifyRequest, reply: FastifyReply) => {
      const [path, qs = ''] = req.url.split(/\?(.*)/s, 2);
      const body = typeof req.body === 'string' ? req.body : '';
      const ct = String(req.headers['content-type'] ?? '');
      const query = parseForm(qs);
      const params: Params = { ...query };
      if (req.method === 'POST' && (ct === '' || ct.startsWith('application/x-www-form-urlencoded'))) parseForm(body, params);
      const action = params.Action;
      if (!action) throw new Ec2Error('MissingAction', 'The request must contain the parameter Action');
      const def = Object.hasOwn(ACTIONS, action) ? ACTIONS[action] : undefined;
      if (!def) {
        if (UNSUPPORTED.test(action)) throw new Ec2Error('UnsupportedOperation', `The action ${action} is not supported by this cloud.`);
        throw new Ec2Error('InvalidAction', `The action ${action} is not valid for this web service.`);
      }
      const caller = await deps.verifier.verify({
        method: req.method, host: String(req.headers.host ?? ''), path, query, params, body, headers: req.headers,
      });
      const ctx: ActionContext = {
        p: params, caller, compute: deps.compute, image: deps.image, ids: deps.ids, db: deps.db, settings: deps.settings, serviceToken: deps.serviceToken,
        discover: (what) => (what === 'instances' ? discoverInstances(ctx) : discoverImages(ctx)),
      };
      const xml = await def.handler(ctx);
      return sendXml(reply, 200, envelope(action, params.Version, awsRequestId(req), xml));
    };
    const wrongMethod = async (req: FastifyRequest) => { throw new Ec2Error('InvalidAction', `The Query API takes GET and POST, not ${req.method}`, 405); };
    for (const url of ['/', '/*']) {
      app.get(url, handle);
      app.post(url, handle);
      app.route({ method: ['PUT', 'DELETE', 'PATCH'], url, handler: wrongMethod });
    }
  });
}
