/**
 * The part of `@unraid/libvirt` (N-API bindings to libvirt) that the libvirt executor uses,
 * typed here so that the agent builds and runs without it. The package is an optional
 * dependency: it compiles against `libvirt-dev` at install, and a machine without libvirt's
 * headers installs everything else. It is loaded on first use by the libvirt executor alone.
 */

/** A libvirt domain handle. */
export interface LibvirtDomain {
  getName(): Promise<string>;
  getInfo(): Promise<{ state: number }>;
  destroy(): Promise<void>;
  undefine(): Promise<void>;
}

/** A connection to libvirtd. */
export interface LibvirtHypervisor {
  connectOpen(): Promise<void>;
  connectClose(): Promise<void>;
  connectListAllDomains(): Promise<LibvirtDomain[]>;
  domainLookupByName(name: string): Promise<LibvirtDomain>;
  domainCreateXML(xml: string): Promise<LibvirtDomain>;
  connectGetHostname(): Promise<string>;
}

/** The binding's module surface. */
export interface LibvirtBinding {
  Hypervisor: new (options: { uri: string }) => LibvirtHypervisor;
  DomainState: { SHUTOFF: number };
}

/** What the error says when the binding is not installed. */
export const LIBVIRT_BINDING_MISSING =
  "the libvirt executor needs the optional package @unraid/libvirt, which is not installed or not built: " +
  "install libvirt-dev (Debian: apt-get install libvirt-dev) and run npm rebuild @unraid/libvirt";

/** The package name, held in a variable so that the compiler does not need its types. */
const PACKAGE: string = "@unraid/libvirt";

let binding: Promise<LibvirtBinding> | undefined;

/**
 * The binding, imported on first call and cached. Rejects with {@link LIBVIRT_BINDING_MISSING}
 * when the package is absent or its native part failed to build; a later call tries again.
 */
export function loadLibvirtBinding(): Promise<LibvirtBinding> {
  binding ??= (import(PACKAGE) as Promise<LibvirtBinding>).catch((err: unknown) => {
    binding = undefined;
    throw new Error(`${LIBVIRT_BINDING_MISSING} (${(err as Error).message})`, { cause: err });
  });
  return binding;
}
