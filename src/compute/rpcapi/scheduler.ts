// Topic `scheduler` (Nova's scheduler rpcapi): the conductor asks where instances go.
//   1.0 select_destinations(spec, instance_uuids) → one Selection per instance, claimed in placement
//   1.1 the spec is a versioned RequestSpec (request-spec.ts)
import { call, topicApi } from '../../common/rpc/typed.ts';
import type { RequestSpec } from '../request-spec.ts';

export interface Selection { host: string; nodename: string; cell_uuid: string; allocations: Record<string, { resources: Record<string, number> }> }

export const schedulerApi = topicApi('scheduler', '1.1', {
  select_destinations: call<{ spec: RequestSpec; instance_uuids: string[] }, Selection[]>('1.0'),
});
