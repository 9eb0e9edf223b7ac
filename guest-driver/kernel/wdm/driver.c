// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
/*
 * Driver and device objects: loading a driver (its DRIVER_OBJECT, every
 * MajorFunction preset to a routine completing the IRP with
 * STATUS_INVALID_DEVICE_REQUEST, DriverEntry at PASSIVE_LEVEL),
 * IoCreateDevice / IoDeleteDevice with the device extension allocated
 * behind the object, the name registry user programs open devices by
 * ("\Device\X" is opened as "X"; a device still DO_DEVICE_INITIALIZING
 * cannot be opened), and the DpcForIsr of IoInitializeDpcRequest.
 * Objects come from the kernel heap, which has no free: a deleted
 * device's memory is not reused.
 */
#include "heap.h"
#include "wdm/internal.h"

#define MAX_DEVICES 8

static PDEVICE_OBJECT devices[MAX_DEVICES];

static NTSTATUS invalid_request(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
	(void)DeviceObject;
	Irp->IoStatus.Status = STATUS_INVALID_DEVICE_REQUEST;
	Irp->IoStatus.Information = 0;
	IoCompleteRequest(Irp, IO_NO_INCREMENT);
	return STATUS_INVALID_DEVICE_REQUEST;
}

static void io_dpc(PKDPC Dpc, PVOID Context, PVOID Irp, PVOID Ctx)
{
	PDEVICE_OBJECT dev = Context;

	dev->DpcForIsr(Dpc, dev, Irp, Ctx);
}

void wdm_initialize_dpc_request(PDEVICE_OBJECT DeviceObject,
				PIO_DPC_ROUTINE DpcRoutine, const char *name)
{
	DeviceObject->DpcForIsr = DpcRoutine;
	wdm_initialize_dpc(&DeviceObject->Dpc, io_dpc, DeviceObject, name);
}

NTSTATUS IoCreateDevice(PDRIVER_OBJECT DriverObject,
			ULONG DeviceExtensionSize, const char *DeviceName,
			ULONG DeviceType, ULONG DeviceCharacteristics,
			BOOLEAN Exclusive, PDEVICE_OBJECT *DeviceObject)
{
	PDEVICE_OBJECT dev;
	size_t n = strlen(DeviceName);
	unsigned int i;

	(void)DeviceCharacteristics, (void)Exclusive;
	wdm_check_irql("IoCreateDevice", PASSIVE_LEVEL);
	if (n >= sizeof(dev->Name))
		return STATUS_INVALID_PARAMETER;
	for (i = 0; i < MAX_DEVICES && devices[i]; i++)
		;
	if (i == MAX_DEVICES)
		return STATUS_INSUFFICIENT_RESOURCES;
	dev = kmalloc(sizeof(*dev) + DeviceExtensionSize);
	if (!dev)
		return STATUS_INSUFFICIENT_RESOURCES;
	wdm_copy(dev->Name, DeviceName, n + 1);
	dev->DriverObject = DriverObject;
	dev->DeviceType = DeviceType;
	dev->Flags = DO_DEVICE_INITIALIZING;
	dev->StackSize = 1;
	dev->DeviceExtension = DeviceExtensionSize ? dev + 1 : NULL;
	KeInitializeDeviceQueue(&dev->DeviceQueue);
	dev->NextDevice = DriverObject->DeviceObject;
	DriverObject->DeviceObject = dev;
	devices[i] = dev;
	*DeviceObject = dev;
	return STATUS_SUCCESS;
}

void IoDeleteDevice(PDEVICE_OBJECT DeviceObject)
{
	PDEVICE_OBJECT *p = &DeviceObject->DriverObject->DeviceObject;
	unsigned int i;

	wdm_check_irql("IoDeleteDevice", PASSIVE_LEVEL);
	for (i = 0; i < MAX_DEVICES; i++)
		if (devices[i] == DeviceObject)
			devices[i] = NULL;
	while (*p && *p != DeviceObject)
		p = &(*p)->NextDevice;
	if (*p)
		*p = DeviceObject->NextDevice;
}

/* "\Device\X" is opened as "X". */
PDEVICE_OBJECT wdm_find_device(const char *name, size_t len)
{
	static const char prefix[] = "\\Device\\";
	unsigned int i;

	for (i = 0; i < MAX_DEVICES; i++) {
		const char *n;

		if (!devices[i])
			continue;
		n = devices[i]->Name;
		if (!memcmp(n, prefix, sizeof(prefix) - 1))
			n += sizeof(prefix) - 1;
		if (str_eq_n(name, len, n) &&
		    !(devices[i]->Flags & DO_DEVICE_INITIALIZING))
			return devices[i];
	}
	return NULL;
}

NTSTATUS wdm_load_driver(const char *name, PDRIVER_INITIALIZE entry,
			 PDRIVER_OBJECT *out)
{
	PDRIVER_OBJECT drv = kmalloc(sizeof(*drv));
	struct wdm_cpu *c = wdm_cpu();
	const char *prev;
	NTSTATUS st;
	unsigned int i;

	if (!drv)
		return STATUS_INSUFFICIENT_RESOURCES;
	drv->Name = name;
	for (i = 0; i <= IRP_MJ_MAXIMUM_FUNCTION; i++)
		drv->MajorFunction[i] = invalid_request;
	prev = wdm_enter(c, "DriverEntry");
	st = entry(drv, name);
	c->routine = prev;
	*out = NT_SUCCESS(st) ? drv : NULL;
	return st;
}

void wdm_unload_driver(PDRIVER_OBJECT DriverObject)
{
	struct wdm_cpu *c = wdm_cpu();
	const char *prev = wdm_enter(c, "DriverUnload");

	if (DriverObject->DriverUnload)
		DriverObject->DriverUnload(DriverObject);
	c->routine = prev;
}
