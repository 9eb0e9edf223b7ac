/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The I/O-manager half of wdm.h (drivers include wdm/wdm.h, which
 * includes this): IRPs and stack locations, MDLs, file, device and
 * driver objects, StartIo device queues, cancellation, message-signalled
 * interrupts, IOCTL codes, loading a driver. Semantics: docs/wdm.md.
 */
#ifndef DMALAB_WDM_IO_H
#define DMALAB_WDM_IO_H

#ifndef DMALAB_WDM_H
#error "include wdm/wdm.h"
#endif

/* ---- Objects of the I/O manager ---- */
struct _IRP;
struct _DEVICE_OBJECT;
struct _DRIVER_OBJECT;
struct _KINTERRUPT;

typedef struct _IO_STATUS_BLOCK {
	NTSTATUS Status;
	ULONG_PTR Information;
} IO_STATUS_BLOCK, *PIO_STATUS_BLOCK;

/* Direct I/O: one guest-physically contiguous range. Under the VMM's
 * identity map a user virtual address is its guest-physical address, so
 * a DMA driver programs PhysicalAddress directly (docs/wdm.md). */
typedef struct _MDL {
	PVOID StartVa;
	PHYSICAL_ADDRESS PhysicalAddress;
	ULONG ByteCount;
} MDL, *PMDL;

static inline ULONG MmGetMdlByteCount(PMDL Mdl)
{
	return Mdl->ByteCount;
}

static inline PVOID MmGetSystemAddressForMdlSafe(PMDL Mdl, ULONG Priority)
{
	(void)Priority;
	return Mdl->StartVa;
}

static inline PHYSICAL_ADDRESS MmGetMdlPhysicalAddress(PMDL Mdl)
{
	return Mdl->PhysicalAddress;
}

#define NormalPagePriority 16

typedef struct _FILE_OBJECT {
	struct _DEVICE_OBJECT *DeviceObject;
	PVOID FsContext; /* the driver's per-open state */
	ULONG Handle; /* the user handle, for diagnostics */
	BOOLEAN InUse;
} FILE_OBJECT, *PFILE_OBJECT;

typedef NTSTATUS IO_COMPLETION_ROUTINE(struct _DEVICE_OBJECT *DeviceObject,
				       struct _IRP *Irp, PVOID Context);
typedef IO_COMPLETION_ROUTINE *PIO_COMPLETION_ROUTINE;

#define SL_PENDING_RETURNED 0x01
#define SL_INVOKE_ON_CANCEL 0x20
#define SL_INVOKE_ON_SUCCESS 0x40
#define SL_INVOKE_ON_ERROR 0x80

#define IRP_MJ_CREATE 0x00
#define IRP_MJ_CLOSE 0x02
#define IRP_MJ_DEVICE_CONTROL 0x0e
#define IRP_MJ_INTERNAL_DEVICE_CONTROL 0x0f
#define IRP_MJ_CLEANUP 0x12
#define IRP_MJ_MAXIMUM_FUNCTION 0x1b

typedef struct _IO_STACK_LOCATION {
	UCHAR MajorFunction;
	UCHAR MinorFunction;
	UCHAR Flags;
	UCHAR Control;
	union {
		struct {
			ULONG OutputBufferLength;
			ULONG InputBufferLength;
			ULONG IoControlCode;
			PVOID Type3InputBuffer;
		} DeviceIoControl;
	} Parameters;
	struct _DEVICE_OBJECT *DeviceObject;
	PFILE_OBJECT FileObject;
	PIO_COMPLETION_ROUTINE CompletionRoutine;
	PVOID Context;
} IO_STACK_LOCATION, *PIO_STACK_LOCATION;

typedef void DRIVER_CANCEL(struct _DEVICE_OBJECT *DeviceObject,
			   struct _IRP *Irp);
typedef DRIVER_CANCEL *PDRIVER_CANCEL;

/* Stack locations per IRP: a caller (or filter) and the function
 * driver. */
#define WDM_IRP_STACK_SIZE 2
/* METHOD_BUFFERED system buffer: control structures, not bulk data (a
 * CPL0 copy costs ~1 us per byte on this platform). */
#define WDM_SYSTEM_BUFFER_SIZE 256

typedef struct _KDEVICE_QUEUE_ENTRY {
	LIST_ENTRY DeviceListEntry;
	ULONG SortKey;
	BOOLEAN Inserted;
} KDEVICE_QUEUE_ENTRY, *PKDEVICE_QUEUE_ENTRY;

typedef struct _IRP {
	PMDL MdlAddress;
	union {
		PVOID SystemBuffer;
	} AssociatedIrp;
	IO_STATUS_BLOCK IoStatus;
	KPROCESSOR_MODE RequestorMode;
	BOOLEAN PendingReturned;
	volatile BOOLEAN Cancel;
	KIRQL CancelIrql;
	CHAR StackCount;
	CHAR CurrentLocation;
	PDRIVER_CANCEL volatile CancelRoutine;
	PVOID UserBuffer;
	PIO_STATUS_BLOCK UserIosb;
	PKEVENT UserEvent;
	union {
		struct {
			KDEVICE_QUEUE_ENTRY DeviceQueueEntry;
			PVOID DriverContext[4];
			PIO_STACK_LOCATION CurrentStackLocation;
		} Overlay;
	} Tail;
	IO_STACK_LOCATION Stack[WDM_IRP_STACK_SIZE];
	/* The I/O manager's bookkeeping (iomgr.c); drivers leave it alone. */
	struct wdm_irp_private {
		LIST_ENTRY Link; /* free list, or the file's outstanding list */
		uint32_t State;
		uint32_t Id;
		PFILE_OBJECT File;
		struct wdm_request *Request; /* user request, or NULL */
		IO_STATUS_BLOCK Snapshot; /* IoStatus at completion */
		MDL Mdl;
		PVOID UserOutput; /* METHOD_BUFFERED: copy-back target */
		ULONG OutputLength;
		ULONG Method; /* of the IOCTL, for the copy back */
		const char *Owner; /* the driver routine last handed it, or
				    * the one that completed it */
		uint8_t Buffer[WDM_SYSTEM_BUFFER_SIZE];
	} Priv;
} IRP, *PIRP;

static inline PIO_STACK_LOCATION IoGetCurrentIrpStackLocation(PIRP Irp)
{
	return Irp->Tail.Overlay.CurrentStackLocation;
}

static inline PIO_STACK_LOCATION IoGetNextIrpStackLocation(PIRP Irp)
{
	return Irp->Tail.Overlay.CurrentStackLocation - 1;
}

static inline void IoCopyCurrentIrpStackLocationToNext(PIRP Irp)
{
	PIO_STACK_LOCATION cur = IoGetCurrentIrpStackLocation(Irp);
	PIO_STACK_LOCATION next = IoGetNextIrpStackLocation(Irp);

	*next = *cur;
	next->CompletionRoutine = NULL;
	next->Context = NULL;
	next->Control = 0;
}

/* Pass the IRP down with this driver's location reused by the next. */
static inline void IoSkipCurrentIrpStackLocation(PIRP Irp)
{
	Irp->CurrentLocation++;
	Irp->Tail.Overlay.CurrentStackLocation++;
}

void IoMarkIrpPending(PIRP Irp);

/* Sets the routine in the next stack location (the one the called
 * driver gets), as Windows does. */
void IoSetCompletionRoutine(PIRP Irp, PIO_COMPLETION_ROUTINE Routine,
			    PVOID Context, BOOLEAN InvokeOnSuccess,
			    BOOLEAN InvokeOnError, BOOLEAN InvokeOnCancel);

/* Returns the previous cancel routine (atomic exchange). */
PDRIVER_CANCEL IoSetCancelRoutine(PIRP Irp, PDRIVER_CANCEL CancelRoutine);

typedef struct _KDEVICE_QUEUE {
	LIST_ENTRY DeviceListHead;
	KSPIN_LOCK Lock;
	BOOLEAN Busy;
} KDEVICE_QUEUE, *PKDEVICE_QUEUE;

typedef void DRIVER_STARTIO(struct _DEVICE_OBJECT *DeviceObject,
			    struct _IRP *Irp);
typedef DRIVER_STARTIO *PDRIVER_STARTIO;
typedef NTSTATUS DRIVER_DISPATCH(struct _DEVICE_OBJECT *DeviceObject,
				 struct _IRP *Irp);
typedef DRIVER_DISPATCH *PDRIVER_DISPATCH;
typedef void IO_DPC_ROUTINE(PKDPC Dpc, struct _DEVICE_OBJECT *DeviceObject,
			    struct _IRP *Irp, PVOID Context);
typedef IO_DPC_ROUTINE *PIO_DPC_ROUTINE;
typedef void DRIVER_UNLOAD(struct _DRIVER_OBJECT *DriverObject);
typedef DRIVER_UNLOAD *PDRIVER_UNLOAD;

typedef struct _DEVICE_OBJECT {
	struct _DRIVER_OBJECT *DriverObject;
	struct _DEVICE_OBJECT *NextDevice;
	PIRP CurrentIrp;
	ULONG Flags;
	ULONG DeviceType;
	CHAR StackSize;
	PVOID DeviceExtension;
	KDEVICE_QUEUE DeviceQueue;
	KDPC Dpc; /* IoInitializeDpcRequest's DpcForIsr */
	PIO_DPC_ROUTINE DpcForIsr;
	char Name[32];
} DEVICE_OBJECT, *PDEVICE_OBJECT;

#define DO_BUFFERED_IO 0x00000004
#define DO_DIRECT_IO 0x00000010
#define DO_DEVICE_INITIALIZING 0x00000080
#define FILE_DEVICE_UNKNOWN 0x00000022

typedef struct _DRIVER_OBJECT {
	PDEVICE_OBJECT DeviceObject;
	PDRIVER_STARTIO DriverStartIo;
	PDRIVER_UNLOAD DriverUnload;
	PDRIVER_DISPATCH MajorFunction[IRP_MJ_MAXIMUM_FUNCTION + 1];
	const char *Name;
} DRIVER_OBJECT, *PDRIVER_OBJECT;

/* Device names: "\\Device\\X"; user programs open "X" (docs/wdm.md). */
NTSTATUS IoCreateDevice(PDRIVER_OBJECT DriverObject,
			ULONG DeviceExtensionSize, const char *DeviceName,
			ULONG DeviceType, ULONG DeviceCharacteristics,
			BOOLEAN Exclusive, PDEVICE_OBJECT *DeviceObject);
void IoDeleteDevice(PDEVICE_OBJECT DeviceObject);

NTSTATUS IoCallDriver(PDEVICE_OBJECT DeviceObject, PIRP Irp);
void IoCompleteRequest(PIRP Irp, UCHAR PriorityBoost);

PIRP IoAllocateIrp(CHAR StackSize, BOOLEAN ChargeQuota);
void IoFreeIrp(PIRP Irp);
/* A threaded kernel-mode DEVICE_CONTROL IRP: METHOD_BUFFERED copies in
 * and back; on completion IoStatusBlock is written and Event set, and the
 * I/O manager frees the IRP. */
PIRP IoBuildDeviceIoControlRequest(ULONG IoControlCode,
				   PDEVICE_OBJECT DeviceObject,
				   PVOID InputBuffer, ULONG InputBufferLength,
				   PVOID OutputBuffer,
				   ULONG OutputBufferLength,
				   BOOLEAN InternalDeviceIoControl,
				   PKEVENT Event,
				   PIO_STATUS_BLOCK IoStatusBlock);

/* Start I/O. Key is not used (no sorted queues). */
void IoStartPacket(PDEVICE_OBJECT DeviceObject, PIRP Irp, ULONG *Key,
		   PDRIVER_CANCEL CancelFunction);
void IoStartNextPacket(PDEVICE_OBJECT DeviceObject, BOOLEAN Cancelable);

void KeInitializeDeviceQueue(PKDEVICE_QUEUE DeviceQueue);
/* FALSE (and Busy set) if the queue was idle: the caller starts the
 * entry itself; TRUE if queued. IRQL DISPATCH_LEVEL. */
BOOLEAN KeInsertDeviceQueue(PKDEVICE_QUEUE DeviceQueue,
			    PKDEVICE_QUEUE_ENTRY Entry);
/* The next entry, or NULL (and Busy cleared). */
PKDEVICE_QUEUE_ENTRY KeRemoveDeviceQueue(PKDEVICE_QUEUE DeviceQueue);
BOOLEAN KeRemoveEntryDeviceQueue(PKDEVICE_QUEUE DeviceQueue,
				 PKDEVICE_QUEUE_ENTRY Entry);

/* Cancellation: the global cancel spin lock, IoCancelIrp. */
void IoAcquireCancelSpinLock(PKIRQL Irql);
void IoReleaseCancelSpinLock(KIRQL Irql);
BOOLEAN IoCancelIrp(PIRP Irp);

void wdm_initialize_dpc_request(PDEVICE_OBJECT DeviceObject,
				PIO_DPC_ROUTINE DpcRoutine, const char *name);
#define IoInitializeDpcRequest(dev, routine) \
	wdm_initialize_dpc_request(dev, routine, #routine)
static inline void IoRequestDpc(PDEVICE_OBJECT DeviceObject, PIRP Irp,
				PVOID Context)
{
	KeInsertQueueDpc(&DeviceObject->Dpc, Irp, Context);
}

/* ---- Interrupts (message-signalled) ---- */
typedef BOOLEAN KMESSAGE_SERVICE_ROUTINE(struct _KINTERRUPT *Interrupt,
					 PVOID ServiceContext, ULONG MessageId);
typedef KMESSAGE_SERVICE_ROUTINE *PKMESSAGE_SERVICE_ROUTINE;
typedef BOOLEAN KSYNCHRONIZE_ROUTINE(PVOID SynchronizeContext);
typedef KSYNCHRONIZE_ROUTINE *PKSYNCHRONIZE_ROUTINE;

typedef struct _KINTERRUPT {
	PKMESSAGE_SERVICE_ROUTINE MessageServiceRoutine;
	PVOID ServiceContext;
	ULONG MessageId;
	ULONG Vector;
	KIRQL Irql; /* vector >> 4 */
	KIRQL SynchronizeIrql;
	KSPIN_LOCK SpinLock;
	PKSPIN_LOCK ActualLock;
	const char *Name;
	uint64_t Count; /* interrupts serviced */
} KINTERRUPT, *PKINTERRUPT;

/* One message: the MSI-X table entry the driver programs. */
typedef struct _IO_INTERRUPT_MESSAGE_INFO_ENTRY {
	PHYSICAL_ADDRESS MessageAddress;
	ULONG MessageData;
	ULONG Vector;
	KIRQL Irql;
	KAFFINITY TargetProcessorSet;
} IO_INTERRUPT_MESSAGE_INFO_ENTRY, *PIO_INTERRUPT_MESSAGE_INFO_ENTRY;

#define WDM_MAX_MESSAGES 8

typedef struct _IO_INTERRUPT_MESSAGE_INFO {
	KIRQL UnifiedIrql;
	ULONG MessageCount;
	IO_INTERRUPT_MESSAGE_INFO_ENTRY MessageInfo[WDM_MAX_MESSAGES];
	KINTERRUPT Interrupts[WDM_MAX_MESSAGES];
} IO_INTERRUPT_MESSAGE_INFO, *PIO_INTERRUPT_MESSAGE_INFO;

#define CONNECT_MESSAGE_BASED 0x2

typedef struct _IO_CONNECT_INTERRUPT_PARAMETERS {
	ULONG Version; /* CONNECT_MESSAGE_BASED only */
	struct {
		PDEVICE_OBJECT PhysicalDeviceObject;
		PKINTERRUPT *ConnectionContext;
		PKMESSAGE_SERVICE_ROUTINE MessageServiceRoutine;
		PVOID ServiceContext;
		PKSPIN_LOCK SpinLock; /* NULL: one lock per message */
		KIRQL SynchronizeIrql; /* 0: the highest message IRQL */
		BOOLEAN FloatingSave;
		ULONG MessageCount; /* not in Windows (the PCI resources
				      * say it); 1..WDM_MAX_MESSAGES */
		PIO_INTERRUPT_MESSAGE_INFO *ConnectionInfo;
	} MessageBased;
} IO_CONNECT_INTERRUPT_PARAMETERS, *PIO_CONNECT_INTERRUPT_PARAMETERS;

/* PASSIVE_LEVEL. Allocates one vector per message (irq_alloc); the ISR
 * gets its MessageId. */
NTSTATUS wdm_connect_interrupt(PIO_CONNECT_INTERRUPT_PARAMETERS Parameters,
			       const char *name);
#define IoConnectInterruptEx(p) \
	wdm_connect_interrupt(p, "MessageServiceRoutine")
void IoDisconnectInterruptEx(PIO_INTERRUPT_MESSAGE_INFO Info);

/* Runs Routine at the interrupt's SynchronizeIrql holding its lock. */
BOOLEAN KeSynchronizeExecution(PKINTERRUPT Interrupt,
			       PKSYNCHRONIZE_ROUTINE SynchronizeRoutine,
			       PVOID SynchronizeContext);
/* IRQL <= the interrupt's SynchronizeIrql: raises to it (interrupts off
 * on this CPU) and takes the interrupt spin lock. */
KIRQL KeAcquireInterruptSpinLock(PKINTERRUPT Interrupt);
void KeReleaseInterruptSpinLock(PKINTERRUPT Interrupt, KIRQL OldIrql);
/* Verifier: the caller holds Interrupt's spin lock (it is the ISR, a
 * SynchCritSection routine, or between KeAcquireInterruptSpinLock and
 * KeReleaseInterruptSpinLock). If not, an `interrupt_lock` violation
 * naming what it touched. A driver calls it wherever it reaches state
 * it shares with its ISR. */
void wdm_interrupt_lock_violation(const char *what);
static inline void wdm_verify_interrupt_lock(PKINTERRUPT Interrupt,
					     const char *what)
{
	/* A lock holds its owner CPU + 1 in the low byte (wdm.h). */
	if (__builtin_expect((*Interrupt->ActualLock & 0xff) !=
				     wdm_this_cpu() + 1ul,
			     0))
		wdm_interrupt_lock_violation(what);
}

/* ---- IOCTL codes (devioctl.h) ---- */
#define METHOD_BUFFERED 0
#define METHOD_IN_DIRECT 1
#define METHOD_OUT_DIRECT 2
#define METHOD_NEITHER 3
#define FILE_ANY_ACCESS 0
#define CTL_CODE(type, function, method, access) \
	(((type) << 16) | ((access) << 14) | ((function) << 2) | (method))
#define IoControlMethod(code) ((code) & 3)

/* ---- Drivers ---- */
typedef NTSTATUS DRIVER_INITIALIZE(PDRIVER_OBJECT DriverObject,
				   const char *RegistryPath);
typedef DRIVER_INITIALIZE *PDRIVER_INITIALIZE;

/* Creates the DRIVER_OBJECT and calls DriverEntry at PASSIVE_LEVEL. */
NTSTATUS wdm_load_driver(const char *name, PDRIVER_INITIALIZE entry,
			 PDRIVER_OBJECT *out);
void wdm_unload_driver(PDRIVER_OBJECT DriverObject);

#endif
