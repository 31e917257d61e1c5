// Glance's default policy (secure RBAC: admin, project member, project reader), in oslo.policy
// syntax so an operator's policy.yaml for glance-api applies unchanged. Visibility of shared and
// private images is also enforced in the queries (as Glance's database layer does): a policy
// allowing `get_image` never reveals an image the caller's project may not see.
import { PolicyEngine, type Credentials } from '../common/http/policy.ts';
import { Forbidden, NotFound } from '../common/errors.ts';
import { credentialsOf, type AuthContext } from '../common/http/auth.ts';

const ADMIN = 'rule:context_is_admin';
const PROJECT_MEMBER = 'role:member and project_id:%(project_id)s';
const PROJECT_READER = 'role:reader and project_id:%(project_id)s';
const IMAGE_MEMBER = 'project_id:%(member_id)s';
const VISIBLE = `project_id:%(project_id)s or ${IMAGE_MEMBER} or 'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s`;
const ADMIN_OR_MEMBER = `${ADMIN} or (${PROJECT_MEMBER})`;
const ADMIN_OR_READER = `${ADMIN} or (${PROJECT_READER})`;

export const imagePolicyDefaults: Record<string, string> = {
  default: '',
  context_is_admin: 'role:admin',
  add_image: `${ADMIN} or (${PROJECT_MEMBER} and project_id:%(owner)s)`,
  delete_image: ADMIN_OR_MEMBER,
  get_image: `${ADMIN} or (role:reader and (${VISIBLE}))`,
  get_images: ADMIN_OR_READER,
  modify_image: ADMIN_OR_MEMBER,
  publicize_image: ADMIN,
  communitize_image: ADMIN_OR_MEMBER,
  download_image: `${ADMIN} or (role:member and (${VISIBLE}))`,
  upload_image: ADMIN_OR_MEMBER,
  delete_image_location: ADMIN,
  get_image_location: ADMIN_OR_READER,
  set_image_location: ADMIN_OR_MEMBER,
  add_member: ADMIN_OR_MEMBER,
  delete_member: ADMIN_OR_MEMBER,
  get_member: `${ADMIN} or (role:reader and (project_id:%(project_id)s or ${IMAGE_MEMBER}))`,
  get_members: `${ADMIN} or (role:reader and (project_id:%(project_id)s or ${IMAGE_MEMBER}))`,
  modify_member: `${ADMIN} or (role:member and ${IMAGE_MEMBER})`,
  manage_image_cache: ADMIN,
  deactivate: ADMIN_OR_MEMBER,
  reactivate: ADMIN_OR_MEMBER,
  copy_image: ADMIN,
  stores_info_detail: ADMIN,
  get_task: ADMIN,
  get_tasks: ADMIN,
  add_task: ADMIN,
  modify_task: ADMIN,
  tasks_api_access: ADMIN,
  // Metadata definitions: everyone reads public namespaces, admins write.
  get_metadef_namespace: `${ADMIN} or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))`,
  get_metadef_namespaces: ADMIN_OR_READER,
  modify_metadef_namespace: ADMIN,
  add_metadef_namespace: ADMIN,
  delete_metadef_namespace: ADMIN,
  get_metadef_object: `${ADMIN} or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))`,
  get_metadef_objects: `${ADMIN} or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))`,
  modify_metadef_object: ADMIN,
  add_metadef_object: ADMIN,
  delete_metadef_object: ADMIN,
  list_metadef_resource_types: ADMIN_OR_READER,
  get_metadef_resource_type: `${ADMIN} or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))`,
  add_metadef_resource_type_association: ADMIN,
  remove_metadef_resource_type_association: ADMIN,
  get_metadef_property: `${ADMIN} or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))`,
  get_metadef_properties: `${ADMIN} or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))`,
  modify_metadef_property: ADMIN,
  add_metadef_property: ADMIN,
  remove_metadef_property: ADMIN,
  get_metadef_tag: `${ADMIN} or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))`,
  get_metadef_tags: `${ADMIN} or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))`,
  modify_metadef_tag: ADMIN,
  add_metadef_tag: ADMIN,
  add_metadef_tags: ADMIN,
  delete_metadef_tag: ADMIN,
  delete_metadef_tags: ADMIN,
};

/** Who is calling, as the Image service needs it. */
export class RequestCtx {
  readonly creds: Credentials;
  readonly isAdmin: boolean;
  constructor(readonly auth: AuthContext, readonly policy: PolicyEngine, readonly requestId: string) {
    this.creds = credentialsOf(auth);
    this.isAdmin = policy.check('context_is_admin', this.creds, {});
  }
  get projectId(): string | undefined { return this.auth.projectId; }
  get userId(): string { return this.auth.userId; }

  check(rule: string, target: Record<string, unknown>): boolean {
    return this.policy.check(rule, this.creds, target);
  }

  /** Glance's message for a refused action. */
  enforce(rule: string, target: Record<string, unknown>): void {
    if (!this.check(rule, target)) throw new Forbidden(`You are not authorized to complete ${rule} action.`);
  }

  /**
   * As Glance's ImageAPIPolicy: a refusal on an image the caller may not even see is a 404, so
   * the existence of other projects' images is never revealed.
   */
  enforceOnImage(rule: string, target: Record<string, unknown>, notFoundMessage: string): void {
    if (this.check(rule, target)) return;
    if (rule === 'get_image' || !this.check('get_image', target)) throw new NotFound(notFoundMessage);
    throw new Forbidden(`You are not authorized to complete ${rule} action.`);
  }
}
