// EC2's errors: a code from AWS's list (InvalidInstanceID.NotFound, AuthFailure, …), a message
// and an HTTP status, rendered once (render.ts) as EC2's <Response><Errors>… document.
export class Ec2Error extends Error {
  constructor(readonly code: string, message: string, readonly status = 400) {
    super(message);
    this.name = 'Ec2Error';
  }
}

export const authFailure = (m = 'AWS was not able to validate the provided access credentials') => new Ec2Error('AuthFailure', m, 401);
export const invalidParameter = (m: string) => new Ec2Error('InvalidParameterValue', m);
export const missingParameter = (name: string) => new Ec2Error('MissingParameter', `The request must contain the parameter ${name}`);
export const unsupported = (m: string) => new Ec2Error('UnsupportedOperation', m);
export const notFound = (code: string, id: string, what: string) => new Ec2Error(code, `The ${what} '${id}' does not exist`);
